#include "ingest/publisher.h"

#include <vector>

namespace birdwatch {

using namespace std::chrono_literals;

Publisher::Publisher(PublisherOptions options, BoundedChannel<Publication>& in, MetricsRegistry& metrics)
    : options_(std::move(options)),
      in_(in),
      log_(make_logger("publisher")),
      backoff_(100ms, 5s, Backoff::Growth::exponential),
      published_(metrics.counter("birdwatch_ingest_published_total", "Payloads published to Redis")),
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
    ensure_connected();
    thread_ = std::thread([this] { guard_.run([this] { run(); }); });
}

void Publisher::join() {
    if (thread_.joinable()) thread_.join();
}

void Publisher::ensure_connected() {
    if (connection_.connected() || std::chrono::steady_clock::now() < next_attempt_) return;
    const std::string error = connection_.connect(options_.redis, true);
    if (!error.empty()) {
        next_attempt_ = std::chrono::steady_clock::now() + backoff_.next();
        if (!outage_logged_) {
            log_->warn("msg=\"redis unavailable, dropping payloads until it returns\" host={} port={} error={}",
                       options_.redis.host, options_.redis.port, logfmt(error));
            outage_logged_ = true;
        }
        return;
    }
    if (ever_connected_) reconnects_.inc();
    log_->info("msg=\"connected to redis\" host={} port={}", options_.redis.host, options_.redis.port);
    ever_connected_ = true;
    outage_logged_ = false;
    backoff_.reset();
    connected_ = true;
}

void Publisher::run() {
    std::vector<Publication> batch;
    batch.reserve(options_.batch_size);
    while (!in_.closed_and_drained()) {
        batch.clear();
        if (in_.pop_batch(batch, options_.batch_size, 200ms) == 0) continue;
        ensure_connected();
        if (!connection_.connected()) {
            dropped_.inc(batch.size());
            continue;
        }
        std::string error;
        const std::size_t acknowledged = connection_.publish(batch, error);
        published_.inc(acknowledged);
        if (acknowledged < batch.size()) {
            // Unacknowledged payloads may or may not have reached Redis; pub/sub is at-most-once.
            dropped_.inc(batch.size() - acknowledged);
            if (!connection_.connected()) {
                connected_ = false;
                next_attempt_ = std::chrono::steady_clock::now() + backoff_.next();
                log_->warn("msg=\"lost redis connection\" error={}", logfmt(error));
                outage_logged_ = true;
            } else if (!outage_logged_) {
                log_->warn("msg=\"PUBLISH rejected\" error={}", logfmt(error));
                outage_logged_ = true;
            }
        }
    }
}

}  // namespace birdwatch
