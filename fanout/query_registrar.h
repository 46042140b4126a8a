#pragma once
// Holds this replica's leases in the query registry (docs/protocol.md): registers
// a query, and this replica's hold on it, when its first local client subscribes,
// refreshes the leases of every query in local use, and when the last client leaves
// ends the hold at once (the ingest stops routing the query here) and stops refreshing,
// so the query's lease lapses unless another replica holds one. Runs on its own
// thread with its own Redis client; re-registers everything after a Redis loss.

#include "common/thread_guard.h"
#include "common/backoff.h"
#include "common/channel.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/query_registry.h"
#include "common/redis_client.h"

#include <chrono>
#include <string>
#include <thread>
#include <unordered_map>

namespace birdwatch {

struct RegistrarOptions {
    RedisEndpoint redis;
    registry::Keys keys;
    std::string replica_id = "replica";
    std::chrono::milliseconds lease_ttl{30000};
    std::chrono::milliseconds refresh{10000};
};

class QueryRegistrar {
public:
    QueryRegistrar(RegistrarOptions options, MetricsRegistry& metrics);
    ~QueryRegistrar();

    // From any thread; never blocks.
    void acquire(const std::string& qid, const std::string& canonical);
    void release(const std::string& qid);
    // Asks the ingest where `qid` went live (a "mark" announcement, after any lease of it):
    // the hub holds a new subscriber's deliveries until that marker arrives.
    void request_marker(const std::string& qid);

    void start();
    void stop();

private:
    struct Change {
        enum class Kind { acquire, release, mark } kind = Kind::acquire;
        std::string qid, canonical;
    };
    void run();
    void announce_marks(const std::vector<std::string>& qids);
    void end_holds(const std::vector<std::string>& qids);
    bool lease(const std::vector<const std::pair<const std::string, std::string>*>& queries);

    const RegistrarOptions options_;
    BoundedChannel<Change> changes_;
    std::shared_ptr<spdlog::logger> log_;
    RedisClient redis_;
    Backoff backoff_;
    bool outage_logged_ = false;
    std::unordered_map<std::string, std::string> held_;  // qid -> canonical text, on the registrar's thread only
    Counter& leases_;
    Counter& announced_;
    Counter& overflow_;
    Counter& conflicts_;
    Counter& marks_;
    FirstOccurrence first_conflict_;
    ThreadGuard guard_;
    std::thread thread_;
};

}  // namespace birdwatch
