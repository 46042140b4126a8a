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
      redis_(options_.redis),
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
    std::string error;
    if (redis_.connected())  // leave the count of users to the replicas that remain
        redis_.run(options_.replicas_key, {"HDEL", options_.replicas_key, options_.replica_id}, error);
}

void StatsReporter::report() {
    const std::int64_t now = now_epoch_ms();
    std::int64_t users = static_cast<std::int64_t>(hub_.size());
    const std::string mine = fmt::format("{} {}", hub_.size(), now);
    const std::string_view key = options_.replicas_key;
    const std::vector<std::vector<std::string_view>> commands{{"HSET", key, options_.replica_id, mine},
                                                              {"HGETALL", key}};
    std::string error;
    const auto replies = redis_.run(key, commands, error);
    if (const redisReply* all = replies[1].get(); all && all->type == REDIS_REPLY_ARRAY) {
        users = 0;
        std::vector<std::vector<std::string_view>> stale;
        for (std::size_t i = 0; i + 1 < all->elements; i += 2) {
            const auto replica = reply_text(all->element[i]);
            const auto value = reply_text(all->element[i + 1]);
            if (!replica || !value) continue;
            long long count = 0, at = 0;
            std::sscanf(std::string(*value).c_str(), "%lld %lld", &count, &at);
            if (now - at <= 5 * options_.interval.count())
                users += std::clamp(count, 0LL, 10'000'000LL);  // a replica holds far fewer; anything else is noise
            else  // a replica that stopped reporting (killed): forget it
                stale.push_back({"HDEL", key, *replica});
        }
        if (!stale.empty()) redis_.run(key, stale, error);
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
