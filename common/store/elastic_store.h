#pragma once
// The production store: ElasticSearch over its REST API, with libcurl on one
// keep-alive connection. Writes go through _bulk (NDJSON, `index` with _id = tweet
// id, so replays are idempotent). Per-item results are read from the response:
// 429/502/503/504 items are retried with exponential backoff, other failures are
// permanent rejections, reported with ES's reason; a failed request as a whole is
// retried the same way and, if it keeps failing, reported as unavailable (the
// ingest's spool keeps the batch). Reads translate a live-search query into an ES
// bool query over fields that hold our own tokens and folded values, so ES selects
// exactly what the percolator would.

#include "common/store/tweet_store.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <memory>

namespace birdwatch {

struct ElasticOptions {
    std::string url = "http://127.0.0.1:9200";
    std::string index = "birdwatch-tweets";
    std::string username, password;  // basic auth, when set
    std::string api_key;             // "Authorization: ApiKey ...", when set
    long timeout_ms = 10000;
    int max_attempts = 5;            // per write(), for retryable items and requests
    std::chrono::milliseconds initial_backoff{500};
    std::chrono::milliseconds max_backoff{30000};
    // How to wait between attempts; tests record instead of sleeping.
    std::function<void(std::chrono::milliseconds)> sleep;
};

// Reading ElasticSearch's answers: pure functions of the response body (fuzzed).
namespace elastic_reply {
struct BulkItem {
    long status = 0;     // the item's HTTP status; 0 when the item is unreadable
    std::string reason;  // why it failed ("type: reason"), when it did
};
// The per-item results of a _bulk response; false when the body is not one for
// `expected` items.
bool bulk_items(std::string_view body, std::size_t expected, std::vector<BulkItem>& items);
// The hits of a _search response, in order, into `page` (unreadable hits are counted
// as skipped); the next cursor is set when the page came back full (`size` hits).
// False when the body has no hits array.
bool search_hits(std::string_view body, std::size_t size, HistoryPage& page);
}  // namespace elastic_reply

class ElasticStore final : public TweetStore {
public:
    explicit ElasticStore(ElasticOptions options);
    ~ElasticStore() override;

    // Creates the index template (mapping) unless it exists.
    StoreStatus ensure_template();

    StoreStatus write(std::span<const StoredTweet> batch) override;
    std::optional<std::string> get(const std::string& id, StoreStatus& status) override;
    std::uint64_t count(StoreStatus& status) override;
    HistoryPage history(const ParsedQuery& query, const PageRequest& page, StoreStatus& status) override;

private:
    struct Response {
        long status = 0;
        std::string body;
        std::string error;  // transport failure
        // Why a read failed: the transport error, else the HTTP status, else the body's shape.
        std::string failure() const {
            return !error.empty() ? error : status != 200 ? "HTTP " + std::to_string(status) : "unreadable response";
        }
    };
    Response request(const char* method, const std::string& path, const std::string& body,
                     const char* content_type = "application/json");

    ElasticOptions options_;
    struct Curl;
    std::unique_ptr<Curl> curl_;
};

// The options from a daemon's "store.elasticsearch" config section (both daemons have one).
ElasticOptions elastic_options_from(const nlohmann::json& section);

// The document stored for a tweet, and the ES query equivalent to a live search.
nlohmann::json elastic_document(const StoredTweet& tweet);
nlohmann::json elastic_query(const QueryNode& query);
nlohmann::json elastic_template(const std::string& index);

}  // namespace birdwatch
