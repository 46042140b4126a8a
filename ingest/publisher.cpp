#include "ingest/publisher.h"

#include <vector>

namespace birdwatch {

using namespace std::chrono_literals;

Publisher::Publisher(PublisherOptions options, BoundedChannel<Publication>& in, MetricsRegistry& metrics)
    : options_(std::move(options)),
      in_(in),
      log_(make_logger("publisher")),
      redis_(options_.redis),
      backoff_(100ms, 5s, Backoff::Growth::exponential),
      published_(metrics.counter("birdwatch_ingest_published_total", "Payloads published to Redis")),
      published_bytes_(metrics.counter("birdwatch_ingest_published_bytes_total",
                                       "Bytes of the payloads handed to Redis (each copy counted)")),
      dropped_(metrics.counter("birdwatch_ingest_dropped_total", "Payloads dropped before reaching Redis",
                               R"(reason="redis_unavailable")")),
      reconnects_(metrics.counter("birdwatch_redis_reconnects_total", "Redis connections re-established after a loss")),
      guard_("publisher", metrics) {
    metrics.gauge_fn("birdwatch_redis_connected", "1 while the publisher holds a Redis connection",
                     [this] { return connected_.load() ? 1.0 : 0.0; });
    metrics.gauge_fn("birdwatch_ingest_publish_queue_depth", "Payloads waiting for the publisher",
                     [this] { return static_cast<double>(in_.size()); });
}

Publisher::~Publisher() { join(); }

void Publisher::start() {
    ready();
    thread_ = std::thread([this] { guard_.run([this] { run(); }); });
}

void Publisher::join() {
    if (thread_.joinable()) thread_.join();
}

// Whether to try Redis now: after a failure, only once the backoff has passed. The
// first connection is made up front, so a healthy start publishes from the first tweet.
bool Publisher::ready() {
    if (failing_ && std::chrono::steady_clock::now() < next_attempt_) return false;
    if (redis_.connected()) return true;
    // Connect (on a cluster: learn the slot map) before a batch is risked on it.
    std::string error;
    const RedisReplyPtr pong = redis_.run("", {"PING"}, error);
    if (pong && pong->type != REDIS_REPLY_ERROR) {
        if (ever_connected_) reconnects_.inc();
        log_->info("msg=\"connected to redis\" host={} port={} cluster={}", options_.redis.host, options_.redis.port,
                   options_.redis.cluster);
        ever_connected_ = true;
        connected_ = true;
        return true;
    }
    failing_ = true;
    next_attempt_ = std::chrono::steady_clock::now() + backoff_.next();
    connected_ = false;
    if (!outage_logged_) {
        log_->warn("msg=\"redis unavailable, dropping payloads until it returns\" host={} port={} error={}",
                   options_.redis.host, options_.redis.port, logfmt(pong ? std::string(pong->str, pong->len) : error));
        outage_logged_ = true;
    }
    return false;
}

void Publisher::run() {
    std::vector<Publication> batch;
    batch.reserve(options_.batch_size);
    while (!in_.closed_and_drained()) {
        batch.clear();
        if (in_.pop_batch(batch, options_.batch_size, 200ms) == 0) continue;
        if (!ready()) {
            dropped_.inc(batch.size());
            continue;
        }
        std::string error;
        const std::size_t acknowledged = redis_.publish(batch, error);
        published_.inc(acknowledged);
        for (const Publication& p : batch) published_bytes_.inc(p.payload.size());
        if (acknowledged == batch.size()) {
            failing_ = false;
            outage_logged_ = false;
            backoff_.reset();
            connected_ = true;
            continue;
        }
        // Unacknowledged payloads may or may not have reached Redis; pub/sub is at-most-once.
        dropped_.inc(batch.size() - acknowledged);
        connected_ = redis_.connected();
        failing_ = true;
        next_attempt_ = std::chrono::steady_clock::now() + backoff_.next();
        if (!outage_logged_) {
            log_->warn("msg=\"publishing failed, retrying with backoff\" error={}", logfmt(error));
            outage_logged_ = true;
        }
    }
}

}  // namespace birdwatch
