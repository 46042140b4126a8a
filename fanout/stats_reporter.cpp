#include "fanout/stats_reporter.h"

#include "common/clock.h"
#include "common/json_text.h"

#include <algorithm>
#include <fmt/format.h>

namespace birdwatch {

using Clock = std::chrono::steady_clock;

StatsReporter::StatsReporter(StatsOptions options, Hub& hub, MetricsRegistry& metrics)
    : options_(std::move(options)),
      hub_(hub),
      frames_(metrics.counter("birdwatch_fanout_stats_frames_total", "Stats frames sent to all clients")),
      log_(make_logger("stats")),
      guard_("stats-reporter", metrics) {}

StatsReporter::~StatsReporter() { stop(); }

void StatsReporter::start() { thread_ = std::thread([this] { guard_.run([this] { run(); }); }); }

void StatsReporter::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void StatsReporter::run() {
    while (true) {
        {
            std::unique_lock lock(mutex_);
            if (wake_.wait_for(lock, options_.interval, [this] { return stopping_; })) break;
        }
        report();
    }
    if (redis_.connected())  // leave the count of users to the replicas that remain
        freeReplyObject(redisCommand(redis_.context(), "HDEL %s %s", options_.replicas_key.c_str(),
                                     options_.replica_id.c_str()));
}

void StatsReporter::report() {
    const std::int64_t now = now_epoch_ms();
    std::int64_t users = static_cast<std::int64_t>(hub_.size());
    if (!redis_.connected()) redis_.connect(options_.redis, true);
    if (redis_.connected()) {
        const std::string mine = fmt::format("{} {}", hub_.size(), now);
        redisAppendCommand(redis_.context(), "HSET %s %s %s", options_.replicas_key.c_str(), options_.replica_id.c_str(),
                           mine.c_str());
        redisAppendCommand(redis_.context(), "HGETALL %s", options_.replicas_key.c_str());
        void* raw = nullptr;
        bool ok = redisGetReply(redis_.context(), &raw) == REDIS_OK;
        if (raw) freeReplyObject(raw);
        raw = nullptr;
        ok = ok && redisGetReply(redis_.context(), &raw) == REDIS_OK;
        if (ok && raw) {
            const auto* all = static_cast<redisReply*>(raw);
            users = 0;
            for (std::size_t i = 0; all->type == REDIS_REPLY_ARRAY && i + 1 < all->elements; i += 2) {
                const auto value = reply_text(all->element[i + 1]);
                if (!reply_text(all->element[i]) || !value) continue;
                long long count = 0, at = 0;
                std::sscanf(std::string(*value).c_str(), "%lld %lld", &count, &at);
                if (now - at <= 5 * options_.interval.count())
                    users += std::clamp(count, 0LL, 10'000'000LL);  // a replica holds far fewer; anything else is noise
                else  // a replica that stopped reporting (killed): forget it
                    freeReplyObject(redisCommand(redis_.context(), "HDEL %s %b", options_.replicas_key.c_str(),
                                                 all->element[i]->str, all->element[i]->len));
            }
        }
        if (raw) freeReplyObject(raw);
        if (!ok) redis_.disconnect();
    }
    std::string stored = "null";
    std::uint64_t total = hub_.payloads_received();
    if (options_.open_store) {
        try {
            if (!store_) store_ = options_.open_store();
            StoreStatus status;
            const std::uint64_t count = store_->count(status);
            if (status.ok()) {
                stored = std::to_string(count);
                total = count;
            }
        } catch (const std::exception&) {
            store_.reset();  // not there yet (the ingest creates it): try again next time
        }
    }
    const auto at = Clock::now();
    double rate = 0;
    if (have_last_ && total >= last_total_)
        rate = static_cast<double>(total - last_total_) / std::chrono::duration<double>(at - last_at_).count();
    last_total_ = total;
    last_at_ = at;
    have_last_ = true;
    frames_.inc();
    hub_.broadcast_all(std::make_shared<const std::string>(
        fmt::format(R"({{"v":1,"type":"stats","users":{},"tweets_stored":{},"tweets_per_second":{:.1f}}})", users,
                    stored, rate)));
}

}  // namespace birdwatch
