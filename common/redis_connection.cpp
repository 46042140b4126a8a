#include "common/redis_connection.h"

#include "common/config.h"

#include <sys/time.h>

#include <algorithm>

namespace birdwatch {

namespace {

using ReplyPtr = RedisReplyPtr;

timeval to_timeval(std::chrono::milliseconds ms) {
    return timeval{static_cast<time_t>(ms.count() / 1000), static_cast<suseconds_t>(ms.count() % 1000 * 1000)};
}

}  // namespace

nlohmann::json redis_config_defaults() {
    return {{"mode", "single"}, {"host", "127.0.0.1"}, {"port", 6379}, {"cluster_nodes", ""},
            {"password", ""}, {"timeout_ms", 2000}};
}

RedisEndpoint redis_endpoint_from(const nlohmann::json& r) {
    RedisEndpoint endpoint;
    endpoint.host = r["host"];
    endpoint.port = r["port"];
    endpoint.password = r["password"];
    endpoint.timeout = std::chrono::milliseconds(r["timeout_ms"].get<int>());
    const std::string mode = r["mode"];
    if (mode != "single" && mode != "cluster")
        throw ConfigError("redis.mode must be single or cluster, got '" + mode + "'");
    endpoint.cluster = mode == "cluster";
    const std::string nodes = r["cluster_nodes"];
    for (std::size_t from = 0; from < nodes.size();) {
        std::size_t to = nodes.find(',', from);
        if (to == std::string::npos) to = nodes.size();
        std::string_view item(nodes.data() + from, to - from);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
        if (!item.empty()) {
            const auto node = cluster::parse_address(item);
            if (!node) throw ConfigError("redis.cluster_nodes: '" + std::string(item) + "' is not host:port");
            endpoint.seeds.push_back(*node);
        }
        from = to + 1;
    }
    if (endpoint.cluster && endpoint.seeds.empty())
        throw ConfigError("redis.mode cluster needs redis.cluster_nodes (host:port,host:port,...)");
    return endpoint;
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

void RedisConnection::append(std::span<const std::string_view> args) {
    constexpr std::size_t most = 16;  // our commands have a handful of arguments
    const char* argv[most];
    std::size_t lengths[most];
    const std::size_t n = std::min(args.size(), most);
    for (std::size_t i = 0; i < n; ++i) {
        argv[i] = args[i].data();
        lengths[i] = args[i].size();
    }
    redisAppendCommandArgv(ctx_.get(), static_cast<int>(n), argv, lengths);
}

RedisReplyPtr RedisConnection::read(std::string& error) {
    void* raw = nullptr;
    if (!ctx_ || redisGetReply(ctx_.get(), &raw) != REDIS_OK || !raw) {
        error = !ctx_ ? "not connected" : ctx_->errstr[0] ? ctx_->errstr : "connection lost";
        ctx_.reset();
        return nullptr;
    }
    return RedisReplyPtr(static_cast<redisReply*>(raw));
}

}  // namespace birdwatch
