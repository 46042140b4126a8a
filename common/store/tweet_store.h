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

// A tweet as stored: the value, and its published JSON (what readers get back).
struct StoredTweet {
    Tweet tweet;
    std::string json;
};

struct StoreStatus {
    enum class Code { ok, unavailable, rejected };
    Code code = Code::ok;
    std::string message;
    std::vector<std::string> rejections;  // with ok: items refused for good ("id: reason"), the rest stored
    bool ok() const { return code == Code::ok; }
    static StoreStatus unavailable(std::string why) { return {Code::unavailable, std::move(why), {}}; }
    static StoreStatus rejected(std::string why) { return {Code::rejected, std::move(why), {}}; }
};

struct HistoryPage {
    std::vector<std::string> tweets;  // published tweet JSON objects, newest first
    std::string next_before;          // pass as `before_id` for the next page; empty at the end
};

class TweetStore {
public:
    virtual ~TweetStore() = default;

    // Stores the batch; tweets already stored (same id) are left as they are.
    // `unavailable` means nothing of the batch is known to be stored: try again later.
    virtual StoreStatus write(std::span<const StoredTweet> batch) = 0;

    virtual std::optional<std::string> get(const std::string& id, StoreStatus& status) = 0;
    virtual std::uint64_t count(StoreStatus& status) = 0;
    // Tweets matching `query` with ids below `before_id` (all when empty), newest first.
    virtual HistoryPage history(const ParsedQuery& query, std::size_t size, const std::string& before_id,
                                StoreStatus& status) = 0;
};

}  // namespace birdwatch
