#pragma once
// Durable before visible. Takes the pipeline's accepted tweets in batches, appends each
// batch to the spool (written to the OS; fsync per store.spool.fsync), and only then
// releases its publications to the publisher and hands the batch to the store writer.
// So a tweet any client has seen is in the spool, and reaches the store even when the
// ingest is killed while the store is slow. When the disk refuses, publications wait
// (retried with backoff). Without a store nothing needs to be durable and publications
// pass straight through.
//
// The store writer gets each batch in memory while its belt has room; when the belt is
// full (the store is slower than the stream) the batch lives only in the spool and the
// writer reads it back from there, so a slow store never holds up publishing.

#include "common/backoff.h"
#include "common/channel.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/redis_connection.h"
#include "common/store/tweet_store.h"
#include "common/thread_guard.h"
#include "ingest/accepted_tweet.h"
#include "ingest/store_ledger.h"

#include <atomic>
#include <thread>

namespace birdwatch {

struct SpooledBatch {
    std::vector<StoredTweet> tweets;
    Spool::Appended where;
};

struct JournalOptions {
    std::size_t batch_size = 1000;
    std::size_t batch_max_bytes = 8 << 20;
};

class Journal {
public:
    // `ledger` and `to_store` are null when there is no store.
    Journal(JournalOptions options, BoundedChannel<AcceptedTweet>& in, BoundedChannel<Publication>& publications,
            StoreLedger* ledger, BoundedChannel<SpooledBatch>* to_store, MetricsRegistry& metrics);
    ~Journal();

    void start();
    // Shutdown has begun: a disk that keeps refusing appends gets a few more attempts,
    // then what it refuses is dropped (counted, never published), so the belts drain.
    void stop() { stopping_ = true; }
    // Returns once the input belt is closed and drained; then closes both output belts.
    void join();

private:
    void run();
    bool append_durably(std::span<AcceptedTweet> batch, Spool::Appended& where);
    void release(std::span<AcceptedTweet> batch);
    void save_source_position(std::span<const AcceptedTweet> batch);

    const JournalOptions options_;
    BoundedChannel<AcceptedTweet>& in_;
    BoundedChannel<Publication>& publications_;
    StoreLedger* ledger_;
    BoundedChannel<SpooledBatch>* to_store_;
    std::shared_ptr<spdlog::logger> log_;
    FirstOccurrence first_;
    Backoff backoff_;
    std::vector<std::string> records_;
    std::atomic<bool> stopping_{false};
    bool gave_up_ = false;  // at shutdown, the disk refused even the last attempts
    std::int64_t saved_position_ = 0;

    Counter& spool_failures_;
    Counter& unspooled_;
    Counter& read_back_;
    ThreadGuard guard_;
    std::thread thread_;
};

}  // namespace birdwatch
