#pragma once
// One blocking hiredis connection, owned RAII. Used from dedicated threads only,
// never from an Asio thread.

#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace birdwatch {

struct RedisEndpoint {
    std::string host = "127.0.0.1";
    int port = 6379;
    std::string password;
    std::chrono::milliseconds timeout{2000};  // connect, and each command when used as a client
};

// The text of a reply element that holds one (a bulk string or a status), or nothing:
// what Redis sends back is checked for its type before it is read.
inline std::optional<std::string_view> reply_text(const redisReply* r) {
    if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS) || !r->str) return std::nullopt;
    return std::string_view(r->str, r->len);
}

// The endpoint from a daemon's "redis" config section (both daemons have one).
RedisEndpoint redis_endpoint_from(const nlohmann::json& section);

// One PUBLISH: `channel` views a string owned by whoever produced it for as long as
// the publisher may hold the message (channel names live in configuration).
struct Publication {
    std::string_view channel;
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

    // Sends the PUBLISHes in a single pipeline, then reads the replies.
    // Returns how many were acknowledged; on a connection error, sets `error` and disconnects.
    std::size_t publish(std::span<const Publication> publications, std::string& error);

private:
    struct Free {
        void operator()(redisContext* c) const { redisFree(c); }
    };
    std::unique_ptr<redisContext, Free> ctx_;
};

}  // namespace birdwatch
