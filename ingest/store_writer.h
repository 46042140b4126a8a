#pragma once
// Stores every tweet the journal spooled, in spool order. Each batch comes from the
// journal's belt in memory (or, when that belt was full, is read back from the spool),
// is written to the store and then committed in the spool. When the store is down or
// refuses, the backlog stays in the spool and is replayed in order (with exponential
// backoff between attempts) once the store answers again. Retention, where the
// backend needs it, runs here too, between batches.

#include "common/thread_guard.h"
#include "common/backoff.h"
#include "common/channel.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/store/tweet_store.h"
#include "ingest/journal.h"
#include "ingest/spool.h"
#include "ingest/store_ledger.h"

#include <atomic>
#include <functional>
#include <thread>

namespace birdwatch {

struct StoreWriterOptions {
    std::size_t batch_size = 1000;
    std::size_t batch_max_bytes = 8 << 20;  // a batch is also cut by size (ES advises well under tens of MB)
    std::chrono::milliseconds batch_wait{50};
    std::chrono::milliseconds retention_interval{60000};
    std::chrono::milliseconds drain_timeout{5000};  // at shutdown, how long a failing store is retried

    std::function<void()> retention;  // empty: the backend needs none
};

class StoreWriter {
public:
    StoreWriter(StoreWriterOptions options, BoundedChannel<SpooledBatch>& in, TweetStore& store, Spool& spool,
                StoreLedger& ledger, MetricsRegistry& metrics);
    ~StoreWriter();

    void start();
    // Returns once the belt is closed and drained and the backlog flushed to the store
    // (or, if the store is still down, left safely in the spool for the next start).
    void join();

private:
    void run();
    void store_spooled(std::vector<SpooledBatch>& popped);
    // Replays what the spool holds before sequence number `until` (all of it: UINT64_MAX).
    void replay_backlog(std::uint64_t until);
    bool store_batch(std::span<const StoredTweet> batch, StoreOutcome& outcome);
    void commit(const StoreOutcome& outcome);

    const StoreWriterOptions options_;
    BoundedChannel<SpooledBatch>& in_;
    TweetStore& store_;
    Spool& spool_;
    StoreLedger& ledger_;
    std::shared_ptr<spdlog::logger> log_;
    Backoff backoff_;
    std::chrono::steady_clock::time_point retry_at_{};
    bool outage_logged_ = false;
    std::atomic<std::int64_t> backlog_since_ms_{0};  // when the spool last went from empty to holding a backlog

    Counter& store_failures_;
    FirstOccurrence first_rejection_;
    Counter& batches_;
    Gauge& last_write_us_;
    ThreadGuard guard_;
    std::thread thread_;
};

}  // namespace birdwatch
