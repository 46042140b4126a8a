#pragma once
// One Store interface, two backends (SQLite embedded, ElasticSearch). The ingest
// writes every accepted tweet; fanouts read history (earlier tweets matching a live
// search, newest first, paged), single tweets, and the total count. Errors are values.

#include "common/query/query.h"
#include "common/tweet.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace birdwatch {

// A tweet as stored: the value, and its published JSON (what readers get back). Or,
// with `deletion`, a delete notice for the tweet `tweet.id` (X's terms require
// honouring deletions): the store removes it, in order with the writes around it.
struct StoredTweet {
    Tweet tweet;
    std::string json;
    bool deletion = false;
};

struct StoreStatus {
    enum class Code { ok, unavailable, rejected };
    Code code = Code::ok;
    std::string message;
    std::vector<std::string> rejections;  // with ok: items refused for good ("id: reason")
    std::size_t duplicates = 0;           // with ok: items the store already held (left as they were)
    std::size_t deleted = 0;              // with ok: stored tweets that deletion items removed
    bool ok() const { return code == Code::ok; }
    static StoreStatus unavailable(std::string why) { return {Code::unavailable, std::move(why), {}}; }
    static StoreStatus rejected(std::string why) { return {Code::rejected, std::move(why), {}}; }
};

// Which matches of a query to read. Every read is bounded: at most `size` tweets, and
// at most `max_candidates` rows looked at (an index candidate that the query's own
// rules then turn down costs as much as a match). A page cut short by the budget
// still carries a cursor, so the walk goes on where it stopped.
struct PageRequest {
    enum class Order { newest_first, oldest_first };
    Order order = Order::newest_first;
    std::size_t size = 20;
    std::uint64_t before = 0;  // ids below this (0: no upper bound); newest_first pages from here
    std::uint64_t after = 0;   // ids above this (0: no lower bound); oldest_first pages from here
    std::size_t max_candidates = 10000;
};

struct HistoryPage {
    std::vector<std::string> tweets;  // published tweet JSON objects, in the requested order
    std::uint64_t next = 0;           // the `before` (or `after`) of the next page; 0 when the walk is done
    std::size_t skipped = 0;          // stored rows that could not be read (left out)
};

class TweetStore {
public:
    virtual ~TweetStore() = default;

    // Stores the batch; tweets already stored (same id) are left as they are and counted
    // as duplicates; tweets the store cannot take are reported as rejections. What is
    // neither was stored now. Deletion items remove their tweet when it is stored.
    // `unavailable` means nothing of the batch is known to be stored: try again later.
    virtual StoreStatus write(std::span<const StoredTweet> batch) = 0;

    virtual std::optional<std::string> get(const std::string& id, StoreStatus& status) = 0;
    virtual std::uint64_t count(StoreStatus& status) = 0;
    // Tweets matching `query` within the page's bounds, in its order.
    virtual HistoryPage history(const ParsedQuery& query, const PageRequest& page, StoreStatus& status) = 0;
};

}  // namespace birdwatch
