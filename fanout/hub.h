#pragma once
// Who wants what. Recipients subscribe to query ids; each payload from Redis is
// read once for its match ids, wrapped once in an immutable shared frame, and
// handed to every recipient subscribed to any of them, once per recipient.
// The hub reports when a query gains its first or loses its last local
// subscriber, without knowing who listens (the registry lease holder).

#include "common/metrics.h"

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace birdwatch {

using Frame = std::shared_ptr<const std::string>;

class Recipient {
public:
    virtual ~Recipient() = default;
    // Called from any thread; must not block.
    virtual void deliver(const Frame& frame) = 0;
    // Close with a WebSocket close code (1001 on shutdown); from any thread.
    virtual void close(unsigned short code) = 0;
};

class Hub {
public:
    using QueryAcquired = std::function<void(const std::string& qid, const std::string& canonical)>;
    using QueryReleased = std::function<void(const std::string& qid)>;

    Hub(MetricsRegistry& metrics, QueryAcquired on_acquired, QueryReleased on_released);
    ~Hub();

    void join(const std::shared_ptr<Recipient>& recipient);
    void leave(const Recipient* recipient);  // also drops its subscriptions

    // False when the recipient already holds that subscription.
    bool subscribe(const Recipient* recipient, const std::string& qid, const std::string& canonical);
    // False when it did not hold it.
    bool unsubscribe(const Recipient* recipient, const std::string& qid);
    std::size_t subscriptions_of(const Recipient* recipient) const;

    // A `matches` payload: delivered to the subscribers of its qids. Called from one thread.
    void publish(std::string payload);
    void close_all(unsigned short code);
    // The same frame to every connected recipient (server-wide messages such as stats).
    void broadcast_all(const Frame& frame);
    std::uint64_t payloads_received() const { return payloads_.value(); }
    // The newest tweet id this replica has received (0 before the first).
    std::uint64_t latest_tweet_id() const { return latest_tweet_id_.load(std::memory_order_relaxed); }
    std::size_t size() const;

private:
    struct Member {
        std::weak_ptr<Recipient> recipient;
        std::vector<std::string> qids;
    };
    std::vector<std::shared_ptr<Recipient>> all() const;
    void drop_subscription(const Recipient* recipient, const std::string& qid, std::vector<std::string>& released);

    QueryAcquired on_acquired_;
    QueryReleased on_released_;
    mutable std::mutex mutex_;
    std::unordered_map<const Recipient*, Member> members_;
    std::unordered_map<std::string, std::vector<const Recipient*>> by_query_;

    // Used by publish() only (one thread).
    struct Reader;
    std::unique_ptr<Reader> reader_;
    std::vector<std::shared_ptr<Recipient>> targets_;

    std::atomic<std::uint64_t> latest_tweet_id_{0};
    Counter& payloads_;
    Histogram& latency_;
    Counter& unreadable_;
    Counter& unrouted_;
};

}  // namespace birdwatch
