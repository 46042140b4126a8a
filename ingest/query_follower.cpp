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

using Reply = RedisReplyPtr;

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
bool scan_all(RedisClient& redis, const char* verb, const std::string& key, std::string& error, OnPair&& on_pair) {
    std::string cursor = "0";
    do {
        Reply reply = redis.run(key, {verb, key, cursor, "COUNT", "1000"}, error);
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
    const std::string* replica = json_read::string_at(json_read::member(event, "replica"));
    if (json_read::integer_or(json_read::member(event, "v"), 0) != 1 || !op || !qid || qid->size() > 64)
        return std::nullopt;
    if (replica && !registry::valid_replica_id(*replica)) return std::nullopt;
    QueryUpdate update;
    update.qid = *qid;
    if (replica) update.replica = *replica;
    if (*op == "add" && query) {
        update.kind = QueryUpdate::Kind::add;
        update.text = *query;
    } else if (*op == "remove") {
        update.kind = QueryUpdate::Kind::remove;
    } else if (*op == "mark") {
        update.kind = QueryUpdate::Kind::mark;
    } else if ((*op == "hold" || *op == "drop") && replica) {
        update.kind = *op == "hold" ? QueryUpdate::Kind::hold : QueryUpdate::Kind::drop;
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
    RedisClient redis(options_.redis);
    std::string error;
    std::unordered_map<std::string, std::string> texts;
    std::vector<std::pair<std::string, std::string>> leases, holds;
    // TIME from the registry's own node: expiries are by its clock.
    Reply time = redis.run(options_.keys.leases, {"TIME"}, error);
    const bool ok = time && time->type == REDIS_REPLY_ARRAY && time->elements == 2 &&
                    scan_all(redis, "HSCAN", options_.keys.queries, error,
                             [&](std::string qid, std::string text) { texts.emplace(std::move(qid), std::move(text)); }) &&
                    scan_all(redis, "ZSCAN", options_.keys.leases, error,
                             [&](std::string qid, std::string score) { leases.emplace_back(std::move(qid), std::move(score)); }) &&
                    scan_all(redis, "ZSCAN", options_.keys.holders, error,
                             [&](std::string hold, std::string score) { holds.emplace_back(std::move(hold), std::move(score)); });
    if (!ok) {
        // The subscription will drop too and trigger another snapshot on reconnect.
        log_->warn("msg=\"could not load the query registry snapshot\" error={}", logfmt(error));
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
    for (auto& [hold, expiry] : holds) {
        const auto space = hold.find(' ');
        if (space == std::string::npos || std::strtod(expiry.c_str(), nullptr) <= now_ms) continue;
        std::string replica = hold.substr(space + 1);
        if (registry::valid_replica_id(replica)) snapshot.holds.emplace_back(hold.substr(0, space), std::move(replica));
    }
    log_->info("msg=\"loaded query registry snapshot\" live_queries={} holds={}", snapshot.live.size(),
               snapshot.holds.size());
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
    RedisClient redis(options_.redis);
    Backoff backoff(100ms, 5s, Backoff::Growth::exponential);
    std::chrono::milliseconds wait = options_.sweep_interval;
    while (true) {
        {
            std::unique_lock lock(mutex_);
            if (wake_.wait_for(lock, wait, [this] { return stopping_; })) return;
        }
        wait = options_.sweep_interval;
        bool more = false;
        do {
            std::string error;
            const Reply reply = redis.run(options_.keys.leases,
                                          {"EVAL", registry::sweep_script, "4", options_.keys.leases,
                                           options_.keys.queries, options_.keys.events, options_.keys.holders},
                                          error);
            if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
                reply->element[0]->type != REDIS_REPLY_INTEGER || reply->element[1]->type != REDIS_REPLY_INTEGER) {
                if (first_.first("sweep-failed"))
                    log_->warn("msg=\"lease sweep failed (logged once)\" error={}",
                               logfmt(reply && reply->type == REDIS_REPLY_ERROR ? std::string(reply->str, reply->len)
                                                                                : error));
                if (!reply) wait = backoff.next();
                break;
            }
            backoff.reset();
            expired_.inc(static_cast<std::uint64_t>(reply->element[0]->integer));
            more = reply->element[0]->integer == 1000 || reply->element[1]->integer == 1000;
        } while (more);
    }
}

}  // namespace birdwatch
