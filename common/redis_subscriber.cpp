#include "common/redis_subscriber.h"

#include "common/log.h"

#include <sys/socket.h>

namespace birdwatch {

using namespace std::chrono_literals;

RedisSubscriber::RedisSubscriber(RedisEndpoint endpoint, std::string channel, Sink sink, MetricsRegistry& metrics,
                                 OnSubscribed on_subscribed, OnDrained on_drained, const std::string& metric_prefix,
                                 Kind kind)
    : endpoint_(std::move(endpoint)),
      channel_(std::move(channel)),
      sharded_(kind == Kind::sharded && endpoint_.cluster),
      locator_(endpoint_),
      sink_(std::move(sink)),
      on_subscribed_(std::move(on_subscribed)),
      on_drained_(std::move(on_drained)),
      log_(make_logger("redis-subscriber")),
      messages_(metrics.counter(metric_prefix + "_messages_received_total", "Messages received on the subscription")),
      reconnects_(metrics.counter(metric_prefix + "_reconnects_total", "Redis connections re-established after a loss")),
      guard_(metric_prefix.substr(metric_prefix.rfind("birdwatch_", 0) == 0 ? 10 : 0) + "-subscriber", metrics) {
    metrics.gauge_fn(metric_prefix + "_subscribed", "1 while the Redis subscription is active",
                     [this] { return subscribed_.load() ? 1.0 : 0.0; });
}

RedisSubscriber::~RedisSubscriber() { stop(); }

void RedisSubscriber::start() {
    thread_ = std::thread([this] { guard_.run([this] { run(); }); });
}

void RedisSubscriber::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        if (active_fd_ >= 0) ::shutdown(active_fd_, SHUT_RDWR);
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

bool RedisSubscriber::wait_before_retry(std::chrono::milliseconds delay) {
    std::unique_lock lock(mutex_);
    return !wake_.wait_for(lock, delay, [this] { return stopping_; });
}

void RedisSubscriber::run() {
    Backoff backoff(100ms, 5s, Backoff::Growth::exponential);
    bool ever_subscribed = false;
    bool outage_logged = false;
    while (true) {
        RedisConnection connection;
        RedisEndpoint node = endpoint_;
        const std::string error = subscribe(connection, node);
        if (!error.empty()) {
            locator_.reset();
            if (!outage_logged) {
                log_->warn("msg=\"redis unavailable, retrying with backoff\" host={} port={} error={}", node.host,
                           node.port, logfmt(error));
                outage_logged = true;
            }
            if (!wait_before_retry(backoff.next())) return;
            continue;
        }
        {
            std::lock_guard lock(mutex_);
            if (stopping_) return;
            active_fd_ = connection.fd();
        }
        if (ever_subscribed) reconnects_.inc();
        ever_subscribed = true;
        outage_logged = false;
        backoff.reset();
        log_->info("msg=\"subscribed\" channel={} host={} port={} sharded={}", channel_, node.host, node.port, sharded_);
        if (on_subscribed_) on_subscribed_();
        subscribed_ = true;

        read_messages(connection);

        subscribed_ = false;
        {
            std::lock_guard lock(mutex_);
            active_fd_ = -1;
            if (stopping_) return;
        }
        log_->warn("msg=\"redis subscription lost, reconnecting\" error={}",
                   logfmt(connection.context()->err ? connection.context()->errstr : "unsubscribed by the server"));
        locator_.reset();  // the node may have failed over, or the slot moved
        outage_logged = true;
        if (!wait_before_retry(backoff.next())) return;
    }
}

std::string RedisSubscriber::subscribe(RedisConnection& connection, RedisEndpoint& node) {
    std::string error;
    if (const auto serving = locator_.node_for(channel_, error)) node = *serving;
    else return error;
    error = connection.connect(node, false);
    if (!error.empty()) return error;
    const char* verb = sharded_ ? "SSUBSCRIBE" : "SUBSCRIBE";
    RedisReplyPtr reply(static_cast<redisReply*>(
        redisCommand(connection.context(), "%s %b", verb, channel_.data(), channel_.size())));
    if (!reply) return connection.context()->errstr;
    if (reply->type == REDIS_REPLY_ERROR) return reply->str;  // MOVED: the slot map is learnt again
    return {};
}

void RedisSubscriber::read_messages(RedisConnection& connection) {
    redisContext* context = connection.context();
    while (true) {
        void* raw = nullptr;
        // Replies already buffered first; only when none is left, drained, then block.
        if (redisGetReplyFromReader(context, &raw) != REDIS_OK) return;
        if (!raw) {
            if (on_drained_) on_drained_();
            if (redisGetReply(context, &raw) != REDIS_OK) return;
        }
        auto* reply = static_cast<redisReply*>(raw);
        // ["message" | "smessage", channel, payload]; subscribe confirmations are ignored.
        // A cluster that moves the slot away unsubscribes us: ["sunsubscribe", channel, 0].
        const auto kind = reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 ? reply_text(reply->element[0])
                                                                                     : std::nullopt;
        if (kind == "message" || kind == "smessage") {
            if (const auto payload = reply_text(reply->element[2])) {
                messages_.inc();
                guard_.attempt("message", [&] { sink_(std::string(*payload)); });
            }
        }
        const bool unsubscribed = kind == "sunsubscribe";  // read before the reply is freed
        freeReplyObject(reply);
        if (unsubscribed) return;
    }
}

}  // namespace birdwatch
