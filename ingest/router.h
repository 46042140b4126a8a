#pragma once
// Which Redis channels a payload goes to (docs/protocol.md, "Channels"), with each
// channel's sequence numbers. On the pipeline's thread only.
//
// single: every payload on the one `matches` channel, which every fanout reads.
// per replica (cluster mode): each fanout replica reads its own channel
// `<matches>:<replica id>`, fed only with the queries it holds in the registry (its
// clients' queries). A tweet is published once per replica it interests, each copy
// naming only that replica's queries; a live marker goes to the replica that holds the
// query, a delete to every replica. Holds arrive as registry events (hold/drop) and in
// snapshots; a hold a snapshot lacks is kept for snapshot_grace, as queries are.

#include "common/metrics.h"

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace birdwatch {

struct RouterOptions {
    std::string matches_channel = "matches";
    bool per_replica = false;
    std::size_t max_replicas = 4096;  // channels kept; beyond it, holds of new replicas are refused (counted)
    std::chrono::milliseconds snapshot_grace{60000};
};

class Router {
public:
    struct Channel {
        std::shared_ptr<const std::string> name;
        std::string replica;            // per replica: whose channel
        std::uint64_t seq = 0;          // the last number given on this channel
        std::size_t holds = 0;          // per replica: the queries routed here
        std::vector<std::string> qids;  // scratch: one tweet's queries on this channel
    };
    using Clock = std::chrono::steady_clock;

    Router(RouterOptions options, MetricsRegistry& metrics);

    bool per_replica() const { return options_.per_replica; }
    // The replica begins to hold the query: its channel when the hold is new (the query's
    // live marker goes there), else null. Always null when single.
    Channel* hold(const std::string& qid, const std::string& replica);
    void drop(const std::string& qid, const std::string& replica);
    void forget_query(const std::string& qid);  // the query is gone: so are its holds
    // The holds a registry snapshot names: new ones are returned (with their queries) for
    // their markers; existing ones it lacks end after snapshot_grace (see expire()).
    std::vector<std::pair<std::string, Channel*>> snapshot(const std::vector<std::pair<std::string, std::string>>& holds,
                                                           Clock::time_point now);
    void expire(Clock::time_point now);
    // The channel of one hold, or null (single: the one channel).
    Channel* holder(const std::string& qid, const std::string& replica);

    // For a tweet that matched `qids` (sorted): emit(channel, the qids it carries there).
    template <typename Emit>
    void route(const std::vector<std::string>& qids, Emit&& emit) {
        if (!options_.per_replica) {
            emit(single_, qids);
            return;
        }
        for (const std::string& qid : qids) {
            const auto it = holders_.find(qid);
            if (it == holders_.end()) continue;
            for (Channel* channel : it->second) {
                if (channel->qids.empty()) touched_.push_back(channel);
                channel->qids.push_back(qid);
            }
        }
        for (Channel* channel : touched_) {
            emit(*channel, channel->qids);
            channel->qids.clear();
        }
        touched_.clear();
    }
    // The channels a query's live marker goes to: single, the one; else each holder's.
    template <typename Emit>
    void each_holder(const std::string& qid, Emit&& emit) {
        if (!options_.per_replica) return emit(single_);
        if (const auto it = holders_.find(qid); it != holders_.end())
            for (Channel* channel : it->second) emit(*channel);
    }
    // Every channel a reader may be on (a delete goes to all).
    template <typename Emit>
    void each_channel(Emit&& emit) {
        if (!options_.per_replica) return emit(single_);
        for (auto& [replica, channel] : channels_)
            if (channel.holds > 0) emit(channel);
    }

private:
    Channel* channel_for(const std::string& replica);
    static std::string hold_key(const std::string& qid, const std::string& replica) { return qid + ' ' + replica; }

    const RouterOptions options_;
    Channel single_;
    std::unordered_map<std::string, Channel> channels_;               // by replica
    std::unordered_map<std::string, std::vector<Channel*>> holders_;  // by query
    std::unordered_map<std::string, Clock::time_point> absent_since_;  // holds a snapshot lacked
    std::vector<Channel*> touched_;
    Counter& refused_;
    std::size_t holds_ = 0;  // for /metrics, on this thread
};

}  // namespace birdwatch
