#pragma once
// Follows the query registry in Redis and hands every change to the pipeline as a
// QueryUpdate: a full snapshot after each (re)subscription, then adds and removes
// as announced. Its sweeper expires queries whose leases lapsed (a crashed fanout
// leaks nothing); those removals arrive through the same announcements, in order.

#include "common/thread_guard.h"
#include "common/channel.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/query_registry.h"
#include "common/redis_client.h"
#include "common/redis_subscriber.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <optional>
#include <string_view>
#include <vector>

namespace birdwatch {

struct QueryUpdate {
    // mark: a fanout asks where the query went live. hold/drop: a replica begins or ends
    // holding the query (the routes of cluster mode).
    enum class Kind { add, remove, snapshot, mark, hold, drop };
    Kind kind = Kind::add;
    std::string qid, text;                                   // add (text), remove, mark, hold, drop
    std::string replica;                                     // hold, drop, mark (empty: any)
    std::vector<std::pair<std::string, std::string>> live;   // snapshot: every live (qid, text)
    std::vector<std::pair<std::string, std::string>> holds;  // snapshot: every (qid, replica) hold
};

// A registry event ({"v":1,"op":"add","qid":..,"query":..}, "remove", "mark", "hold",
// "drop": docs/protocol.md) as an update; nullopt when it is not one.
std::optional<QueryUpdate> parse_registry_event(std::string_view payload);

struct FollowerOptions {
    RedisEndpoint redis;
    registry::Keys keys;
    std::chrono::milliseconds sweep_interval{1000};
};

class QueryFollower {
public:
    QueryFollower(FollowerOptions options, BoundedChannel<QueryUpdate>& out, MetricsRegistry& metrics);
    ~QueryFollower();

    void start();
    void stop();
    // True once the first snapshot is on the belt; false after `timeout` (Redis down).
    bool wait_for_snapshot(std::chrono::milliseconds timeout);

private:
    void on_event(const std::string& payload);
    void load_snapshot();
    void sweep_loop();

    const FollowerOptions options_;
    BoundedChannel<QueryUpdate>& out_;
    std::shared_ptr<spdlog::logger> log_;
    FirstOccurrence first_;
    Counter& events_;
    Counter& bad_events_;
    Counter& expired_;
    RedisSubscriber subscriber_;

    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    bool snapshot_loaded_ = false;
    ThreadGuard guard_;
    std::thread sweeper_;
};

}  // namespace birdwatch
