#pragma once
// One blocking hiredis connection, owned RAII. Used from dedicated threads only,
// never from an Asio thread.

#include "common/redis_cluster.h"

#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace birdwatch {

// Where Redis is. `single`: one server at host:port. `cluster`: a Redis Cluster, whose
// slot map is learnt from any of `seeds`; host:port then names the node being spoken to.
struct RedisEndpoint {
    std::string host = "127.0.0.1";
    int port = 6379;
    std::string password;
    std::chrono::milliseconds timeout{2000};  // connect, and each command when used as a client
    bool cluster = false;
    std::vector<cluster::NodeAddress> seeds;

    RedisEndpoint at(const cluster::NodeAddress& node) const {
        RedisEndpoint e = *this;
        e.host = node.host;
        e.port = node.port;
        return e;
    }
};

// The text of a reply element that holds one (a bulk string or a status), or nothing:
// what Redis sends back is checked for its type before it is read.
inline std::optional<std::string_view> reply_text(const redisReply* r) {
    if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS) || !r->str) return std::nullopt;
    return std::string_view(r->str, r->len);
}

// The endpoint from a daemon's "redis" config section (both daemons have one): `mode`
// "single" or "cluster", and in cluster mode `cluster_nodes`, "host:port,host:port".
// Throws ConfigError when they do not read.
RedisEndpoint redis_endpoint_from(const nlohmann::json& section);
// That section's connection keys and their defaults (each daemon adds its channels).
nlohmann::json redis_config_defaults();

struct FreeRedisReply {
    void operator()(redisReply* r) const { freeReplyObject(r); }
};
using RedisReplyPtr = std::unique_ptr<redisReply, FreeRedisReply>;

// One PUBLISH (SPUBLISH on a cluster). Channel names are shared, not copied: a replica's
// channel is made once and named by every payload routed to it.
struct Publication {
    std::shared_ptr<const std::string> channel;
    std::string payload;
};

class RedisConnection {
public:
    // Returns an empty string on success, otherwise why it failed.
    // `command_timeout` bounds each reply wait (a publisher); subscribers wait forever.
    std::string connect(const RedisEndpoint& endpoint, bool command_timeout);
    bool connected() const { return ctx_ != nullptr; }
    void disconnect() { ctx_.reset(); }
    redisContext* context() { return ctx_.get(); }
    int fd() const { return ctx_ ? ctx_->fd : -1; }

    // Queues one command (sent with the next read); then read() its reply, in order.
    void append(std::span<const std::string_view> args);
    // The next reply (an error reply included); null when the connection failed: `error`
    // then says why, and the connection is closed.
    RedisReplyPtr read(std::string& error);

private:
    struct Free {
        void operator()(redisContext* c) const { redisFree(c); }
    };
    std::unique_ptr<redisContext, Free> ctx_;
};

}  // namespace birdwatch
