#pragma once
// The client protocol (docs/protocol.md), with no I/O and no state: a client's
// message becomes either a validated, typed request (ids as integers, sizes within
// their limits, unknown fields ignored) or an error that names the offending field.
// Nothing a client sends reaches the hub or the store before it passed through here.
// The replies a replica sends are encoded here too, so one file holds the wire format.

#include "common/query/query.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace birdwatch::client {

struct Subscribe {
    ParsedQuery query;
};
struct Unsubscribe {
    std::string qid;
};
// Either `qid` (a subscription of this connection) or `query` (any query text).
struct History {
    std::string qid;
    std::optional<ParsedQuery> query;
    std::size_t size = 0;
    std::uint64_t before = 0;  // 0: from the newest
};
struct Resume {
    std::string qid;
    std::uint64_t since_id = 0;
    std::uint64_t before_id = 0;  // a gap's end (exclusive); 0: up to where live delivery began
};
struct Get {
    std::uint64_t id = 0;
};
using Request = std::variant<Subscribe, Unsubscribe, History, Resume, Get>;

struct Error {
    std::string code;     // bad_message, unknown_type, bad_query, ...
    std::string field;    // the field at fault (empty: the message as a whole)
    std::string message;  // plain words for a person
    std::optional<std::size_t> position;  // bad_query: where in the query
};

struct Limits {
    std::size_t max_page = 100;          // history: largest `size`
    std::size_t default_page = 20;       // history without `size`
};

// One message (a JSON object) from a client.
std::variant<Request, Error> parse_request(std::string_view text, const Limits& limits);

// A tweet id as the protocol writes it: a decimal string of a positive 63-bit integer
// (the stores key tweets by signed 64-bit integers). Nothing else is an id.
std::optional<std::uint64_t> parse_tweet_id(std::string_view text);
// A query id as parse_query() makes them.
bool is_query_id(std::string_view text);

// ------------------------------------------------------------------ replies

std::string error_reply(const Error& error);
std::string error_reply(std::string_view code, std::string_view message);
// {"v":1,"type":<type>,"qid":..[,"query":..]}
std::string query_reply(std::string_view type, std::string_view qid, const std::string* canonical);
// History, newest first: {"v":1,"type":"history","qid":..,"tweets":[..],"next_before":"<id>"|null}
// Resume, oldest first:  {"v":1,"type":"resumed","qid":..,"tweets":[..],"next_since":"<id>"|null}
// A null cursor means the walk reached the end; a page may hold fewer than `size`
// tweets and still carry a cursor when its scan budget ran out.
std::string history_reply(std::string_view qid, const std::vector<std::string>& tweets, std::uint64_t next_before);
std::string resumed_reply(std::string_view qid, const std::vector<std::string>& tweets, std::uint64_t next_since,
                          std::uint64_t before_id = 0);
// The replica may have missed tweets with ids after `after_id` and before `before_id`
// (Redis or the ingest went away and came back): every client resumes each of its
// subscriptions with since_id = after_id and before_id.
std::string gap_notice(std::uint64_t after_id, std::uint64_t before_id);
// {"v":1,"type":"found","tweet":{..}} or {"v":1,"type":"not_found","id":".."}
std::string found_reply(std::uint64_t id, const std::optional<std::string>& tweet);

}  // namespace birdwatch::client
