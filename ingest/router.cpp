#include "ingest/router.h"

#include <algorithm>
#include <unordered_set>

namespace birdwatch {

Router::Router(RouterOptions options, MetricsRegistry& metrics)
    : options_(std::move(options)),
      refused_(metrics.counter("birdwatch_ingest_holds_refused_total",
                               "Registry holds refused because redis.max_replicas channels are in use")) {
    single_.name = std::make_shared<const std::string>(options_.matches_channel);
    metrics.gauge_fn("birdwatch_ingest_replica_channels", "Per-replica channels known (cluster mode)",
                     [this] { return static_cast<double>(channels_.size()); });
}

Router::Channel* Router::channel_for(const std::string& replica) {
    if (const auto it = channels_.find(replica); it != channels_.end()) return &it->second;
    if (channels_.size() >= options_.max_replicas) {
        // Make room by forgetting a replica that holds nothing (its numbering starts over).
        const auto idle = std::find_if(channels_.begin(), channels_.end(), [](const auto& c) { return c.second.holds == 0; });
        if (idle == channels_.end()) return nullptr;
        channels_.erase(idle);
    }
    Channel& channel = channels_[replica];
    channel.name = std::make_shared<const std::string>(options_.matches_channel + ":" + replica);
    channel.replica = replica;
    return &channel;
}

Router::Channel* Router::hold(const std::string& qid, const std::string& replica) {
    if (!options_.per_replica) return nullptr;
    absent_since_.erase(hold_key(qid, replica));
    Channel* channel = channel_for(replica);
    if (!channel) {
        refused_.inc();
        return nullptr;
    }
    auto& holders = holders_[qid];
    if (std::find(holders.begin(), holders.end(), channel) != holders.end()) return nullptr;
    holders.push_back(channel);
    ++channel->holds;
    ++holds_;
    return channel;
}

Router::Channel* Router::holder(const std::string& qid, const std::string& replica) {
    if (!options_.per_replica) return &single_;
    const auto channel = channels_.find(replica);
    const auto holders = holders_.find(qid);
    if (channel == channels_.end() || holders == holders_.end()) return nullptr;
    const bool holds = std::find(holders->second.begin(), holders->second.end(), &channel->second) != holders->second.end();
    return holds ? &channel->second : nullptr;
}

void Router::drop(const std::string& qid, const std::string& replica) {
    absent_since_.erase(hold_key(qid, replica));
    Channel* channel = holder(qid, replica);
    if (!channel || !options_.per_replica) return;
    auto& holders = holders_[qid];
    std::erase(holders, channel);
    if (holders.empty()) holders_.erase(qid);
    --channel->holds;
    --holds_;
}

void Router::forget_query(const std::string& qid) {
    const auto it = holders_.find(qid);
    if (it == holders_.end()) return;
    for (Channel* channel : it->second) {
        --channel->holds;
        --holds_;
    }
    holders_.erase(it);
}

std::vector<std::pair<std::string, Router::Channel*>> Router::snapshot(
    const std::vector<std::pair<std::string, std::string>>& holds, Clock::time_point now) {
    std::vector<std::pair<std::string, Channel*>> fresh;
    if (!options_.per_replica) return fresh;
    std::unordered_set<std::string> named;
    for (const auto& [qid, replica] : holds) named.insert(hold_key(qid, replica));
    for (const auto& [qid, holders] : holders_)
        for (const Channel* channel : holders)
            if (std::string key = hold_key(qid, channel->replica); !named.count(key))
                absent_since_.try_emplace(std::move(key), now);
    for (const auto& [qid, replica] : holds)
        if (Channel* channel = hold(qid, replica)) fresh.emplace_back(qid, channel);
    return fresh;
}

void Router::expire(Clock::time_point now) {
    for (auto it = absent_since_.begin(); it != absent_since_.end();) {
        if (now - it->second < options_.snapshot_grace) {
            ++it;
            continue;
        }
        const auto space = it->first.find(' ');
        const std::string qid = it->first.substr(0, space), replica = it->first.substr(space + 1);
        it = absent_since_.erase(it);
        drop(qid, replica);
    }
}

}  // namespace birdwatch
