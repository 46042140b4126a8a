#pragma once
// Commands and publications to Redis, whether it is one server or a Redis Cluster
// (hiredis 0.14 speaks to single nodes only; Debian packages no cluster client for C).
// On a cluster it keeps the slot map (CLUSTER SLOTS, learnt from the seed nodes), one
// connection per master, sends each command to the master serving its key's slot, and
// follows MOVED (the map is stale: learn it again) and ASK (a slot migrating: ask the
// importing node once, after ASKING). A lost connection forgets the map too, so a
// failover is seen at the next call. Blocking: for dedicated threads, never an Asio one.

#include "common/redis_connection.h"

#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace birdwatch {

class RedisClient {
public:
    explicit RedisClient(RedisEndpoint endpoint) : endpoint_(std::move(endpoint)) {}

    // Commands that all touch `key`'s slot, pipelined to the node serving it. One entry
    // per command, null where no reply came (the connection failed: `error` says why).
    // An error reply is returned as it is, except a redirection, which is followed.
    std::vector<RedisReplyPtr> run(std::string_view key, std::span<const std::vector<std::string_view>> commands,
                                   std::string& error);
    RedisReplyPtr run(std::string_view key, std::vector<std::string_view> command, std::string& error);

    // PUBLISH each one (SPUBLISH on a cluster, to the master serving its channel's slot),
    // pipelined per node. Returns how many Redis took; `error` names the last failure.
    std::size_t publish(std::span<const Publication> publications, std::string& error);

    // The node serving `key` now (the server itself when single).
    std::optional<RedisEndpoint> node_for(std::string_view key, std::string& error);
    // Forgets the slot map and closes every connection: the next call starts afresh.
    void reset();
    bool connected() const;
    const RedisEndpoint& endpoint() const { return endpoint_; }

private:
    template <typename KeyOf, typename Append, typename Done>
    void dispatch(std::size_t count, KeyOf key_of, Append append, Done done, std::string& error);
    RedisConnection* connection_to(const RedisEndpoint& node, std::string& error);
    void lost(const RedisEndpoint& node);
    bool learn_slots(std::string& error);

    const RedisEndpoint endpoint_;
    cluster::SlotMap slots_;
    std::map<std::string, RedisConnection> connections_;  // by "host:port"
};

}  // namespace birdwatch
