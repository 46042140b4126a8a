#pragma once
// Stores every tweet the pipeline accepted. Each batch is appended to the spool
// first, then written to the store, then committed in the spool. When the store is
// down or refuses, batches keep going to the spool, and the backlog is replayed in
// order (with exponential backoff between attempts) once the store answers again.
// Retention, where the backend needs it, runs here too, between batches.

#include "common/thread_guard.h"
#include "common/backoff.h"
#include "common/channel.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/store/tweet_store.h"
#include "ingest/spool.h"

#include <atomic>
#include <functional>
#include <thread>

namespace birdwatch {

struct StoreWriterOptions {
    std::size_t batch_size = 1000;
    std::size_t batch_max_bytes = 8 << 20;  // a batch is also cut by size (ES advises well under tens of MB)
    std::chrono::milliseconds batch_wait{50};
    std::chrono::milliseconds retention_interval{60000};
    std::function<void()> retention;  // empty: the backend needs none
};

class StoreWriter {
public:
    StoreWriter(StoreWriterOptions options, BoundedChannel<StoredTweet>& in, TweetStore& store, Spool& spool,
                MetricsRegistry& metrics);
    ~StoreWriter();

    void start();
    // Returns once the belt is closed and drained and the backlog flushed to the store
    // (or, if the store is still down, left safely in the spool for the next start).
    void join();

private:
    void run();
    void accept(std::vector<StoredTweet>& batch);
    void replay_backlog();
    bool store_batch(std::span<const StoredTweet> batch);

    const StoreWriterOptions options_;
    BoundedChannel<StoredTweet>& in_;
    TweetStore& store_;
    Spool& spool_;
    std::shared_ptr<spdlog::logger> log_;
    Backoff backoff_;
    std::chrono::steady_clock::time_point retry_at_{};
    bool outage_logged_ = false;
    std::atomic<std::int64_t> backlog_since_ms_{0};  // when the spool last went from empty to holding a backlog

    Counter& accepted_;
    Counter& stored_;
    Counter& store_failures_;
    Counter& rejected_;
    Counter& duplicates_;
    FirstOccurrence first_rejection_;
    Counter& spool_failures_;
    Counter& batches_;
    Gauge& last_write_us_;
    ThreadGuard guard_;
    std::thread thread_;
};

}  // namespace birdwatch
