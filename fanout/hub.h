#pragma once
// Who wants what. Each payload from Redis is read once for its match ids and
// wrapped once in an immutable shared frame. The payloads of one burst (what one
// read from Redis brought) go to every loop of the IoPool's inbox, and a loop is
// woken once for however many bursts wait there. It groups the tweets it takes by
// query and encodes each query's tweets once as a Batch (one WebSocket frame), which
// every subscriber of that query on the loop queues as one shared item; then every
// recipient it touched writes all of it at once. So a loop that falls behind does
// less work per tweet, not more: per subscriber it queues one batch per turn. A
// subscriber of several live queries gets its one query's batches when only one of them
// had tweets, else a batch made for it: each tweet once, in order.
// A loop's subscription index is touched only by that loop's thread, so the
// per-message delivery path takes no lock.
// The hub reports when a query gains its first or loses its last subscriber on
// this replica, without knowing who listens (the registry lease holder).

#include "common/metrics.h"
#include "common/protocol.h"
#include "fanout/frame.h"
#include "fanout/io_pool.h"

#include <atomic>
#include <chrono>
#include <optional>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace birdwatch {

class Recipient {
public:
    virtual ~Recipient() = default;
    // All are called on the recipient's own loop and must not block, nor leave the
    // hub from inside them (a recipient that fails leaves on a later turn of its loop).
    // Queues a batch of tweets (or a broadcast); true when the recipient wants a flush()
    // once the turn's batches are queued.
    virtual bool deliver(const BatchPtr& batch) = 0;
    // A message every subscriber must get (a gap notice): queued with the replies, never
    // dropped for being slow. True when the recipient wants a flush().
    virtual bool notice(const Frame& frame) = 0;
    virtual void flush() = 0;
    // A subscription that waited for its live marker is live: tweets after `after_id`
    // reach it live, those up to it are history's.
    virtual void live(const std::string& qid, std::uint64_t after_id) = 0;
    virtual void close(unsigned short code) = 0;  // a WebSocket close code (1001 on shutdown)
};

class Hub {
public:
    // A boundary not known (the marker never came and the loop had handed on nothing):
    // history and resume are then not bounded by it.
    static constexpr std::uint64_t unknown_boundary = UINT64_MAX;

    using QueryAcquired = std::function<void(const std::string& qid, const std::string& canonical)>;
    using QueryReleased = std::function<void(const std::string& qid)>;
    using MarkerNeeded = std::function<void(const std::string& qid)>;

    // `inbox_payloads`: how many payloads may wait for one loop; beyond that the oldest
    // waiting bursts are dropped (counted) -- a loop that stalls cannot grow memory.
    // `on_marker_needed`: ask the ingest where a query went live (QueryRegistrar::request_marker).
    // A new subscriber waits for that marker at most `marker_timeout`, then starts where its loop stands.
    Hub(MetricsRegistry& metrics, IoPool& loops, QueryAcquired on_acquired, QueryReleased on_released,
        MarkerNeeded on_marker_needed = {}, std::size_t inbox_payloads = 65536,
        std::chrono::milliseconds marker_timeout = std::chrono::seconds(2));
    ~Hub();

    // On loop `loop`'s thread, for recipients living on that loop.
    void join(std::size_t loop, const std::shared_ptr<Recipient>& recipient);
    void leave(std::size_t loop, const Recipient* recipient);  // also drops its subscriptions
    // Where the subscription's live delivery begins: the newest tweet id before it (history
    // lies at and below it), when known at once -- the ingest is known to match the query.
    // Otherwise nullopt: the hub asks the ingest for its live marker and holds the query's
    // tweets from this recipient until the marker passes this loop, then calls live().
    std::optional<std::uint64_t> subscribe(std::size_t loop, const Recipient* recipient, const std::string& qid,
                                           const std::string& canonical);
    // From each loop's timer: subscriptions that waited longer than marker_timeout start now.
    void start_overdue(std::size_t loop);
    void unsubscribe(std::size_t loop, const Recipient* recipient, const std::string& qid);

    // A `matches` payload for the subscribers of its qids, sent on at the next
    // end_of_burst(). Both from one thread (the subscriber's).
    void publish(std::string payload);
    void end_of_burst();
    // The subscription to Redis was lost and is back (on the subscriber's thread too):
    // whatever was published meanwhile never arrived. Payloads also carry their stream
    // position, so a new ingest run (epoch) or a skipped seq is noticed the same way.
    // Either way, with the next tweet every subscriber gets a gap notice naming the ids
    // in between, and resumes them from the store.
    void resubscribed();
    // From any thread: the same frame to every connected recipient (stats), or a close to all.
    void broadcast_all(const Frame& frame);
    void close_all(unsigned short code);

    std::uint64_t payloads_received() const { return payloads_.value(); }
    // The newest tweet id this replica has received (0 before the first).
    std::uint64_t latest_tweet_id() const { return latest_tweet_id_.load(std::memory_order_relaxed); }
    std::size_t size() const { return connections_.load(std::memory_order_relaxed); }

private:
    // The hub holds each joined recipient until it leaves.
    struct Member {
        std::shared_ptr<Recipient> recipient;
        std::vector<std::string> qids;
        std::size_t pending = 0;  // of those, waiting for their live marker
        std::uint64_t merged_in = 0;  // the last segment in which it got a batch made for it
        bool several_live() const { return qids.size() - pending >= 2; }
    };
    struct Routed {
        // notice: to every member with a subscription; gap: to those with a live one (a
        // waiting subscription's first history or resume reaches past the gap anyway).
        enum class Kind { tweet, notice, gap, live };
        Frame frame;                     // none for a live marker
        std::vector<std::string> qids;   // a live marker: its one query
        Kind kind = Kind::tweet;
        std::uint64_t id = 0;            // the tweet's id; a live marker's after_id
        std::uint64_t marker = 0;        // a live marker's number (markers_ when it was read)
    };
    struct Pending {
        Member* member;
        std::chrono::steady_clock::time_point since;
    };
    using Burst = std::vector<Routed>;
    // The tweets of one query among a run of consecutive tweets in a loop's turn (a
    // segment ends at any notice, gap or live marker, which must keep its place).
    struct QueryBatches {
        const std::string* qid;
        std::vector<Member*>* members;  // the query's live subscribers on this loop
        Batch::Builder building;
        std::vector<BatchPtr> built;
    };
    // One per loop; only that loop's thread touches it. Members are map nodes, so
    // the per-query lists can point at them.
    struct Shard {
        std::unordered_map<const Recipient*, Member> members;
        std::unordered_map<std::string, std::vector<Member*>> by_query;
        std::unordered_map<std::string, std::vector<Pending>> pending;  // waiting for their live marker
        std::uint64_t last_id = 0;       // the newest tweet this loop has handed on
        std::uint64_t markers_seen = 0;  // the number of the newest live marker this loop has passed
        // Scratch for the segment being collected.
        std::vector<QueryBatches> segment;
        std::unordered_map<const std::vector<Member*>*, std::size_t> segment_index;
        std::vector<const Routed*> segment_tweets;
        std::vector<Member*> merged;  // subscribers of several live queries, served after the others
        std::vector<const QueryBatches*> member_batches;  // scratch: one of those's queries in the segment
        std::uint64_t segments = 0;
        std::vector<std::shared_ptr<Recipient>> touched;  // scratch: the turn's recipients to flush
        // Bursts handed over by the subscriber thread. The loop takes all of them in one
        // turn, so a loop that falls behind writes more per syscall instead of lagging more.
        std::mutex inbox_mutex;
        std::deque<std::shared_ptr<const Burst>> inbox;
        std::size_t inbox_payloads = 0;
        bool scheduled = false;
    };
    void deliver_inbox(std::size_t loop);
    void queue(Shard& shard, const Burst& burst);
    void deliver_segment(Shard& shard);
    void deliver_merged(Shard& shard, Member& member);
    void drop_subscription(Shard& shard, Member* member, const std::string& qid);
    void start_pending(Shard& shard, const std::string& qid, std::uint64_t after_id, bool overdue);
    void count_query(const std::string& qid, const std::string* canonical, int delta);
    template <typename Visit>
    void for_each_member(Visit visit);

    IoPool& loops_;
    std::vector<Shard> shards_;
    QueryAcquired on_acquired_;
    QueryReleased on_released_;
    MarkerNeeded on_marker_needed_;
    const std::chrono::milliseconds marker_timeout_;
    // Subscribers per query across all loops: only subscribe/unsubscribe take this lock.
    mutable std::mutex queries_mutex_;
    std::unordered_map<std::string, std::size_t> queries_;
    // Queries the ingest is known to match: the newest live marker seen while this replica
    // had subscribers for them. A loop may start a subscriber at once only once it has
    // passed that marker itself (its tweets are then in the same order as the ingest's).
    struct Confirmed {
        std::uint64_t after_id = 0;
        std::uint64_t marker = 0;
    };
    std::unordered_map<std::string, Confirmed> confirmed_;
    std::uint64_t markers_ = 0;  // live markers read, on the subscriber's thread

    struct Reader;  // used by publish() only (one thread)
    std::unique_ptr<Reader> reader_;
    Burst burst_;   // publish() and end_of_burst() only
    // Gap detection, on the subscriber's thread.
    void note_gap(const char* reason);
    void note_position(const std::string& payload);
    protocol::StreamPosition last_position_;
    const char* gap_reason_ = nullptr;  // a gap is open: announced with the next tweet
    std::uint64_t gap_after_ = 0;       // the newest tweet id before it
    std::unordered_map<std::string, Counter*> gaps_;  // by reason

    const std::size_t inbox_capacity_;
    std::atomic<std::size_t> connections_{0};
    std::atomic<std::uint64_t> latest_tweet_id_{0};
    Counter& payloads_;
    Histogram& latency_;
    Counter& unreadable_;
    Counter& unwanted_;
    Counter& deletions_;
    Counter& live_markers_;
    Counter& marker_timeouts_;
    Counter& inbox_dropped_;
};

}  // namespace birdwatch
