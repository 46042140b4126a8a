#pragma once
// Every interval, tells each client how the whole system is doing: connected users
// across all replicas (each replica writes its own count, with a timestamp, into one
// Redis hash; stale entries of dead replicas are ignored and removed), tweets stored,
// and tweets per second (stored, or received here when there is no store). One frame,
// shared by every client. Own thread, own Redis connection, own store connection.

#include "common/thread_guard.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/redis_client.h"
#include "common/store/tweet_store.h"
#include "fanout/hub.h"

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace birdwatch {

struct StatsOptions {
    RedisEndpoint redis;
    std::string replicas_key = "{birdwatch}:replicas";
    std::string replica_id;
    std::chrono::milliseconds interval{2000};
    std::function<std::unique_ptr<TweetStore>()> open_store;  // empty: no store
};

class StatsReporter {
public:
    StatsReporter(StatsOptions options, Hub& hub, MetricsRegistry& metrics);
    ~StatsReporter();
    void start();
    void stop();

private:
    void run();
    void report();

    const StatsOptions options_;
    Hub& hub_;
    Counter& frames_;
    std::shared_ptr<spdlog::logger> log_;
    RedisClient redis_;
    std::unique_ptr<TweetStore> store_;
    std::uint64_t last_total_ = 0;
    std::chrono::steady_clock::time_point last_at_{};
    bool have_last_ = false;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    ThreadGuard guard_;
    std::thread thread_;
};

}  // namespace birdwatch
