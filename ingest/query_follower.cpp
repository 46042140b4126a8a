#include "ingest/query_follower.h"

#include "common/backoff.h"
#include "common/json_read.h"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <optional>
#include <unordered_map>

namespace birdwatch {

using namespace std::chrono_literals;

namespace {

struct FreeReply {
    void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, FreeReply>;

Reply command(RedisConnection& c, const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
    }
    return Reply(static_cast<redisReply*>(
        redisCommandArgv(c.context(), static_cast<int>(argv.size()), argv.data(), lens.data())));
}

// A decimal number from Redis, or nothing.
std::optional<double> number(const redisReply* r) {
    const auto reply = reply_text(r);
    if (!reply) return std::nullopt;
    char* end = nullptr;
    const std::string text(*reply);
    const double value = std::strtod(text.c_str(), &end);
    if (end == text.c_str() || *end != '\0') return std::nullopt;
    return value;
}

// Runs a cursor scan (HSCAN/ZSCAN) to the end, calling on_pair for each field/value.
template <typename OnPair>
bool scan_all(RedisConnection& c, const char* verb, const std::string& key, OnPair&& on_pair) {
    std::string cursor = "0";
    do {
        Reply reply = command(c, {verb, key, cursor, "COUNT", "1000"});
        if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) return false;
        const redisReply* items = reply->element[1];
        const auto next = reply_text(reply->element[0]);
        if (!next || items->type != REDIS_REPLY_ARRAY) return false;
        cursor.assign(*next);
        for (std::size_t i = 0; i + 1 < items->elements; i += 2) {
            const auto field = reply_text(items->element[i]), value = reply_text(items->element[i + 1]);
            if (field && value) on_pair(std::string(*field), std::string(*value));
        }
    } while (cursor != "0");
    return true;
}

}  // namespace

QueryFollower::QueryFollower(FollowerOptions options, BoundedChannel<QueryUpdate>& out, MetricsRegistry& metrics)
    : options_(std::move(options)),
      out_(out),
      log_(make_logger("query-follower")),
      events_(metrics.counter("birdwatch_ingest_query_events_total", "Query registry announcements received")),
      bad_events_(metrics.counter("birdwatch_ingest_query_events_rejected_total",
                                  "Query registry announcements that could not be read")),
      expired_(metrics.counter("birdwatch_ingest_queries_expired_total", "Queries removed because their leases lapsed")),
      subscriber_(options_.redis, options_.keys.events, [this](std::string p) { on_event(p); }, metrics,
                  [this] { load_snapshot(); }, {}, "birdwatch_registry_redis"),
      guard_("query-follower", metrics) {}

QueryFollower::~QueryFollower() { stop(); }

void QueryFollower::start() {
    subscriber_.start();
    sweeper_ = std::thread([this] { guard_.run([this] { sweep_loop(); }); });
}

void QueryFollower::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    subscriber_.stop();
    if (sweeper_.joinable()) sweeper_.join();
}

std::optional<QueryUpdate> parse_registry_event(std::string_view payload) {
    const auto event = nlohmann::json::parse(payload, nullptr, false);
    const std::string* op = json_read::string_at(json_read::member(event, "op"));
    const std::string* qid = json_read::string_at(json_read::member(event, "qid"));
    const std::string* query = json_read::string_at(json_read::member(event, "query"));
    if (json_read::integer_or(json_read::member(event, "v"), 0) != 1 || !op || !qid || qid->size() > 64)
        return std::nullopt;
    QueryUpdate update;
    update.qid = *qid;
    if (*op == "add" && query) {
        update.kind = QueryUpdate::Kind::add;
        update.text = *query;
    } else if (*op == "remove") {
        update.kind = QueryUpdate::Kind::remove;
    } else if (*op == "mark") {
        update.kind = QueryUpdate::Kind::mark;
    } else {
        return std::nullopt;
    }
    return update;
}

void QueryFollower::on_event(const std::string& payload) {
    events_.inc();
    std::optional<QueryUpdate> update = parse_registry_event(payload);
    if (!update) {
        bad_events_.inc();
        if (first_.first("bad-event"))
            log_->warn("msg=\"unreadable query registry event, skipped (logged once)\" payload={}", logfmt(payload));
        return;
    }
    out_.push(std::move(*update));
}

void QueryFollower::load_snapshot() {
    RedisConnection connection;
    const std::string error = connection.connect(options_.redis, true);
    std::unordered_map<std::string, std::string> texts;
    std::vector<std::pair<std::string, std::string>> leases;
    Reply time = error.empty() ? command(connection, {"TIME"}) : nullptr;
    const bool ok = time && time->type == REDIS_REPLY_ARRAY && time->elements == 2 &&
                    scan_all(connection, "HSCAN", options_.keys.queries,
                             [&](std::string qid, std::string text) { texts.emplace(std::move(qid), std::move(text)); }) &&
                    scan_all(connection, "ZSCAN", options_.keys.leases,
                             [&](std::string qid, std::string score) { leases.emplace_back(std::move(qid), std::move(score)); });
    if (!ok) {
        // The subscription will drop too and trigger another snapshot on reconnect.
        log_->warn("msg=\"could not load the query registry snapshot\" error={}",
                   logfmt(error.empty() ? std::string(connection.context() ? connection.context()->errstr : "") : error));
        return;
    }
    const auto seconds = number(time->element[0]), micros = number(time->element[1]);
    const double now_ms = seconds && micros ? *seconds * 1000 + *micros / 1000 : 0;
    QueryUpdate snapshot;
    snapshot.kind = QueryUpdate::Kind::snapshot;
    for (auto& [qid, expiry] : leases) {
        const auto text = texts.find(qid);
        const double expires = std::strtod(expiry.c_str(), nullptr);
        if (expires > now_ms && text != texts.end()) snapshot.live.emplace_back(qid, std::move(text->second));
    }
    log_->info("msg=\"loaded query registry snapshot\" live_queries={}", snapshot.live.size());
    out_.push(std::move(snapshot));
    {
        std::lock_guard lock(mutex_);
        snapshot_loaded_ = true;
    }
    wake_.notify_all();
}

bool QueryFollower::wait_for_snapshot(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return wake_.wait_for(lock, timeout, [this] { return snapshot_loaded_ || stopping_; }) && snapshot_loaded_;
}

void QueryFollower::sweep_loop() {
    RedisConnection connection;
    Backoff backoff(100ms, 5s, Backoff::Growth::exponential);
    std::chrono::milliseconds wait = options_.sweep_interval;
    while (true) {
        {
            std::unique_lock lock(mutex_);
            if (wake_.wait_for(lock, wait, [this] { return stopping_; })) return;
        }
        if (!connection.connected() && !connection.connect(options_.redis, true).empty()) {
            wait = backoff.next();
            continue;
        }
        backoff.reset();
        wait = options_.sweep_interval;
        long long removed = 0;
        do {
            Reply reply(static_cast<redisReply*>(redisCommand(
                connection.context(), "EVAL %s 3 %s %s %s", registry::sweep_script, options_.keys.leases.c_str(),
                options_.keys.queries.c_str(), options_.keys.events.c_str())));
            if (!reply || reply->type != REDIS_REPLY_INTEGER) {
                if (first_.first("sweep-failed"))
                    log_->warn("msg=\"lease sweep failed (logged once)\" error={}",
                               logfmt(reply && reply->type == REDIS_REPLY_ERROR ? reply->str : connection.context()->errstr));
                if (!reply) connection.disconnect();
                break;
            }
            removed = reply->integer;
            expired_.inc(static_cast<std::uint64_t>(removed));
        } while (removed == 1000);
    }
}

}  // namespace birdwatch
