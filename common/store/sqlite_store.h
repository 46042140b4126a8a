#pragma once
// The embedded default store: one SQLite file in WAL mode. Tweets are keyed by their
// id (the rowid), so rewriting one is a no-op and newest-first paging walks an index.
// An FTS5 table holds each tweet's tokens (our tokenizer's, so keyword matching
// follows docs/query-language.md) and marked terms for its hashtags, mentions,
// author and reply-to. History turns a query into an FTS expression that every
// match satisfies, then checks each candidate with the query's own program: history
// and live matches follow the same rules.

#include "common/store/tweet_store.h"

#include <chrono>
#include <memory>

struct sqlite3;

namespace birdwatch {

struct SqliteOptions {
    std::string path;
    bool read_only = false;                          // fanouts on the same host
    std::chrono::milliseconds busy_timeout{2000};    // waiting for another writer's lock
};

class SqliteStore final : public TweetStore {
public:
    // Opens (and, unless read-only, creates) the database. Throws std::runtime_error.
    explicit SqliteStore(const SqliteOptions& options);
    ~SqliteStore() override;

    StoreStatus write(std::span<const StoredTweet> batch) override;
    std::optional<std::string> get(const std::string& id, StoreStatus& status) override;
    std::uint64_t count(StoreStatus& status) override;
    HistoryPage history(const ParsedQuery& query, const PageRequest& page, StoreStatus& status) override;

    // Deletes tweets created before `min_created_ms` (0: no age limit) and all but the
    // newest `max_rows` (0: no row limit). Returns how many it deleted.
    std::uint64_t enforce_retention(std::int64_t min_created_ms, std::uint64_t max_rows, StoreStatus& status);

private:
    struct Statements;
    StoreStatus failure(const char* what);
    void reindex_if_old();
    int remove(std::int64_t id);  // rows removed (0 or 1), -1 on failure

    sqlite3* db_ = nullptr;
    std::unique_ptr<Statements> statements_;
};

// The FTS5 MATCH expression a tweet must satisfy to possibly match `query` (anchored).
std::string fts_expression(const QueryNode& query);

}  // namespace birdwatch
