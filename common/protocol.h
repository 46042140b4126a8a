#pragma once
// The `matches` payload: the contract between ingest and fanout (docs/protocol.md).
// It is also the exact text frame browsers receive, so fanout forwards it unchanged.

#include "common/tweet.h"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace birdwatch::protocol {

inline constexpr int version = 1;
inline constexpr const char* default_matches_channel = "matches";

// Where a payload stands in its channel's stream: `epoch` names one run of the ingest
// (its start, epoch microseconds), `seq` counts that run's payloads on the channel from 1.
// A reader that sees the epoch change or a seq skip knows it may have missed payloads.
struct StreamPosition {
    std::int64_t epoch = 0;  // 0: not given (payloads from tools), no gap detection
    std::uint64_t seq = 0;
};

// {"v":1,"type":"tweet","qids":[..],"ingest_us":N,"epoch":E,"seq":S,"tweet":{..}} around
// the tweet's JSON object from append_tweet_json() (built once, also what the store keeps).
void append_tweet_payload(std::string& out, std::string_view tweet_json, std::span<const std::string> query_ids,
                          std::int64_t ingest_us,  // epoch microseconds
                          const StreamPosition& position = {});
// {"v":1,"type":"delete","id":"<tweet id>","epoch":E,"seq":S}: the tweet was deleted at its
// source; whoever shows it must stop (X's developer terms).
void append_delete_payload(std::string& out, std::string_view tweet_id, const StreamPosition& position = {});
// The deleted tweet's id when `payload` is a delete payload, else empty.
std::string_view deleted_id(std::string_view payload);
// {"v":1,"type":"live","qid":"q…","after_id":"<id>","epoch":E,"seq":S}: from this point in
// the stream on, the ingest matches query `qid`; every tweet it had handled before has an
// id of at most `after_id` (0: none). Fanouts route it, clients never see it.
void append_live_payload(std::string& out, std::string_view qid, std::uint64_t after_id,
                         const StreamPosition& position = {});
struct LiveMarker {
    std::string qid;
    std::uint64_t after_id = 0;
};
// The marker when `payload` is one; an empty qid otherwise.
LiveMarker read_live_marker(std::string_view payload);
// The tweet id of a tweet payload (its "tweet":{"id":"…"}), 0 when it has none.
std::uint64_t tweet_id(std::string_view payload);
// The payload's stream position (epoch 0 when it has none), read from its head.
StreamPosition read_position(std::string_view payload);

// Reads the "qids" member of a `matches` payload; the rest is never parsed.
// One reader per thread (it keeps its parser's buffers).
class PayloadReader {
public:
    PayloadReader();
    ~PayloadReader();
    // The payload's query ids; empty when it has no readable "qids" array of strings.
    std::vector<std::string> qids(std::string_view payload);

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace birdwatch::protocol
