#pragma once
// Subscribes to one Redis channel on its own thread and hands every message to a
// sink. Reconnects with backoff and resubscribes after any failure; reads promptly
// so Redis's pubsub output-buffer limit is never reached on its side.
// On a Redis Cluster a `sharded` channel is subscribed with SSUBSCRIBE on the master
// serving its slot; when that master fails or the slot moves (Redis then sends
// `sunsubscribe`), the subscriber learns the slot map again and subscribes on the new
// owner. A classic channel is subscribed on the node serving its name's slot (a
// cluster delivers classic PUBLISHes on every node).

#include "common/backoff.h"
#include "common/metrics.h"
#include "common/redis_client.h"
#include "common/thread_guard.h"

#include <spdlog/logger.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace birdwatch {

class RedisSubscriber {
public:
    // Called on the subscriber's thread, must not block for long.
    using Sink = std::function<void(std::string payload)>;
    // Called on the subscriber's thread after each (re)subscription, before any message
    // that follows it is read: the place to load a snapshot that messages then amend.
    using OnSubscribed = std::function<void()>;
    // Called on the subscriber's thread when every message already read from the
    // socket has gone to the sink, before waiting for more: where a sink that
    // collects a burst of messages hands it on.
    using OnDrained = std::function<void()>;

    enum class Kind { classic, sharded };

    RedisSubscriber(RedisEndpoint endpoint, std::string channel, Sink sink, MetricsRegistry& metrics,
                    OnSubscribed on_subscribed = {}, OnDrained on_drained = {},
                    const std::string& metric_prefix = "birdwatch_redis", Kind kind = Kind::classic);
    ~RedisSubscriber();

    void start();
    void stop();
    bool subscribed() const { return subscribed_.load(); }

private:
    void run();
    std::string subscribe(RedisConnection& connection, RedisEndpoint& node);
    bool wait_before_retry(std::chrono::milliseconds delay);
    void read_messages(RedisConnection& connection);

    const RedisEndpoint endpoint_;
    const std::string channel_;
    const bool sharded_;  // SSUBSCRIBE: on a cluster only
    RedisClient locator_;  // the node serving the channel (cluster)
    const Sink sink_;
    const OnSubscribed on_subscribed_;
    const OnDrained on_drained_;
    std::shared_ptr<spdlog::logger> log_;
    Counter& messages_;
    Counter& reconnects_;
    std::atomic<bool> subscribed_{false};

    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    int active_fd_ = -1;  // the socket stop() shuts down to unblock a read
    ThreadGuard guard_;
    std::thread thread_;
};

}  // namespace birdwatch
