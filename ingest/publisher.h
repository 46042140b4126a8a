#pragma once
// Takes publications off its belt and PUBLISHes them to Redis (SPUBLISHes them to
// the masters serving their channels on a Redis Cluster), pipelined in batches.
// While Redis is unreachable it keeps draining its belt, counting what it drops, so
// the source and pipeline never block on a dead Redis; it reconnects with
// exponential backoff.

#include "common/thread_guard.h"
#include "common/backoff.h"
#include "common/channel.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/redis_client.h"

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
    bool ready();

    const PublisherOptions options_;
    BoundedChannel<Publication>& in_;
    std::shared_ptr<spdlog::logger> log_;
    RedisClient redis_;
    Backoff backoff_;
    std::chrono::steady_clock::time_point next_attempt_{};
    bool ever_connected_ = false;
    bool failing_ = false;  // the last batch was not taken whole: wait for next_attempt_
    bool outage_logged_ = false;
    std::atomic<bool> connected_{false};

    Counter& published_;
    Counter& published_bytes_;
    Counter& dropped_;
    Counter& reconnects_;
    ThreadGuard guard_;
    std::thread thread_;
};

}  // namespace birdwatch
