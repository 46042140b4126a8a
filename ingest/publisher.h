#pragma once
// Takes publications off its belt and PUBLISHes them to Redis, pipelined in
// batches. While Redis is unreachable it keeps draining its belt, counting what it
// drops, so the source and pipeline never block on a dead Redis; it reconnects
// with exponential backoff.

#include "common/thread_guard.h"
#include "common/backoff.h"
#include "common/channel.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/redis_connection.h"

#include <atomic>
#include <thread>

namespace birdwatch {

struct PublisherOptions {
    RedisEndpoint redis;
    std::size_t batch_size = 256;
};

class Publisher {
public:
    Publisher(PublisherOptions options, BoundedChannel<Publication>& in, MetricsRegistry& metrics);
    ~Publisher();

    // Connects once synchronously (so a healthy start publishes from the first tweet), then runs.
    void start();
    // Returns once the input belt is closed and drained.
    void join();

private:
    void run();
    void ensure_connected();

    const PublisherOptions options_;
    BoundedChannel<Publication>& in_;
    std::shared_ptr<spdlog::logger> log_;
    RedisConnection connection_;
    Backoff backoff_;
    std::chrono::steady_clock::time_point next_attempt_{};
    bool ever_connected_ = false;
    bool outage_logged_ = false;
    std::atomic<bool> connected_{false};

    Counter& published_;
    Counter& dropped_;
    Counter& reconnects_;
    ThreadGuard guard_;
    std::thread thread_;
};

}  // namespace birdwatch
