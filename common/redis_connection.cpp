#include "common/redis_connection.h"

#include <sys/time.h>

namespace birdwatch {

namespace {

struct FreeReply {
    void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, FreeReply>;

timeval to_timeval(std::chrono::milliseconds ms) {
    return timeval{static_cast<time_t>(ms.count() / 1000), static_cast<suseconds_t>(ms.count() % 1000 * 1000)};
}

}  // namespace

RedisEndpoint redis_endpoint_from(const nlohmann::json& r) {
    return {r["host"], r["port"], r["password"], std::chrono::milliseconds(r["timeout_ms"].get<int>())};
}

std::string RedisConnection::connect(const RedisEndpoint& endpoint, bool command_timeout) {
    ctx_.reset(redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port, to_timeval(endpoint.timeout)));
    if (!ctx_) return "out of memory allocating a redis context";
    if (ctx_->err) {
        std::string error = ctx_->errstr;
        ctx_.reset();
        return error;
    }
    redisEnableKeepAlive(ctx_.get());
    if (command_timeout) redisSetTimeout(ctx_.get(), to_timeval(endpoint.timeout));
    if (!endpoint.password.empty()) {
        ReplyPtr reply(static_cast<redisReply*>(redisCommand(ctx_.get(), "AUTH %s", endpoint.password.c_str())));
        if (!reply || reply->type == REDIS_REPLY_ERROR) {
            std::string error = reply ? std::string("AUTH failed: ") + reply->str : std::string(ctx_->errstr);
            ctx_.reset();
            return error;
        }
    }
    return {};
}

std::size_t RedisConnection::publish(std::span<const Publication> publications, std::string& error) {
    if (!ctx_) {
        error = "not connected";
        return 0;
    }
    for (const Publication& p : publications) {
        redisAppendCommand(ctx_.get(), "PUBLISH %b %b", p.channel.data(), p.channel.size(), p.payload.data(),
                           p.payload.size());
    }
    std::size_t acknowledged = 0;
    for (std::size_t i = 0; i < publications.size(); ++i) {
        void* raw = nullptr;
        if (redisGetReply(ctx_.get(), &raw) != REDIS_OK) {
            error = ctx_->errstr;
            ctx_.reset();
            return acknowledged;
        }
        ReplyPtr reply(static_cast<redisReply*>(raw));
        if (reply->type == REDIS_REPLY_ERROR) {
            error = reply->str;  // the command failed, the connection is fine
            continue;
        }
        ++acknowledged;
    }
    return acknowledged;
}

}  // namespace birdwatch
