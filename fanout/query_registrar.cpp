#include "fanout/query_registrar.h"

#include <vector>

namespace birdwatch {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

QueryRegistrar::QueryRegistrar(RegistrarOptions options, MetricsRegistry& metrics)
    : options_(std::move(options)),
      changes_(100000),
      log_(make_logger("query-registrar")),
      redis_(options_.redis),
      backoff_(100ms, 5s, Backoff::Growth::exponential),
      leases_(metrics.counter("birdwatch_fanout_query_leases_total", "Query leases taken or refreshed in Redis")),
      announced_(metrics.counter("birdwatch_fanout_queries_announced_total",
                                 "Queries this replica (re)registered because they were not live")),
      overflow_(metrics.counter("birdwatch_fanout_registry_changes_dropped_total",
                                "Subscription changes dropped because the registrar fell behind")),
      conflicts_(metrics.counter("birdwatch_fanout_registry_conflicts_total",
                                 "Leases refused because the registry holds a different text under the same id")),
      marks_(metrics.counter("birdwatch_fanout_live_marker_requests_total",
                             "Times this replica asked the ingest where a query went live")),
      guard_("query-registrar", metrics) {}

QueryRegistrar::~QueryRegistrar() { stop(); }

void QueryRegistrar::acquire(const std::string& qid, const std::string& canonical) {
    if (!changes_.try_push({Change::Kind::acquire, qid, canonical})) overflow_.inc();
}

void QueryRegistrar::release(const std::string& qid) {
    if (!changes_.try_push({Change::Kind::release, qid, {}})) overflow_.inc();
}

void QueryRegistrar::request_marker(const std::string& qid) {
    if (!changes_.try_push({Change::Kind::mark, qid, {}})) overflow_.inc();
}

// Without Redis the request is lost: the hub then starts the subscriber where it stands
// after its marker timeout.
void QueryRegistrar::announce_marks(const std::vector<std::string>& qids) {
    if (qids.empty()) return;
    std::vector<std::string> events;
    for (const auto& qid : qids)
        events.push_back(R"({"v":1,"op":"mark","qid":")" + qid + R"(","replica":")" + options_.replica_id + "\"}");
    std::vector<std::vector<std::string_view>> commands;
    for (const auto& event : events) commands.push_back({"PUBLISH", options_.keys.events, event});
    std::string error;
    for (const auto& reply : redis_.run(options_.keys.events, commands, error))
        if (reply && reply->type != REDIS_REPLY_ERROR) marks_.inc();
}

// Lost with Redis: the hold then lapses with its lease.
void QueryRegistrar::end_holds(const std::vector<std::string>& qids) {
    if (qids.empty()) return;
    std::vector<std::vector<std::string_view>> commands;
    for (const auto& qid : qids)
        commands.push_back({"EVAL", registry::release_script, "2", options_.keys.holders, options_.keys.events, qid,
                            options_.replica_id});
    std::string error;
    redis_.run(options_.keys.holders, commands, error);
}

void QueryRegistrar::start() { thread_ = std::thread([this] { guard_.run([this] { run(); }); }); }

void QueryRegistrar::stop() {
    changes_.close();
    if (thread_.joinable()) thread_.join();
}

bool QueryRegistrar::lease(const std::vector<const std::pair<const std::string, std::string>*>& queries) {
    if (queries.empty()) return true;
    const std::string ttl = std::to_string(options_.lease_ttl.count());
    std::vector<std::vector<std::string_view>> commands;
    for (const auto* q : queries)
        commands.push_back({"EVAL", registry::lease_script, "4", options_.keys.leases, options_.keys.queries,
                            options_.keys.events, options_.keys.holders, q->first, q->second, ttl,
                            options_.replica_id});
    std::string error;
    const auto replies = redis_.run(options_.keys.leases, commands, error);
    for (std::size_t i = 0; i < queries.size(); ++i) {
        const redisReply* reply = replies[i].get();
        if (!reply) {
            if (!outage_logged_)
                log_->warn("msg=\"redis unavailable, leases will be renewed when it returns\" error={}", logfmt(error));
            outage_logged_ = true;
            return false;
        }
        if (reply->type == REDIS_REPLY_INTEGER && reply->integer < 0) {
            conflicts_.inc();
            if (first_conflict_.first(queries[i]->first))
                log_->error("msg=\"the registry holds a different text under this query id; not leased "
                            "(logged once per id)\" qid={}", queries[i]->first);
        } else if (reply->type == REDIS_REPLY_INTEGER) {
            leases_.inc();
            announced_.inc(static_cast<std::uint64_t>(reply->integer));
        } else if (reply->type == REDIS_REPLY_ERROR && first_conflict_.first(" script failed")) {
            log_->warn("msg=\"lease script failed (logged once)\" error={}", logfmt(std::string(reply->str, reply->len)));
        }
    }
    outage_logged_ = false;
    return true;
}

void QueryRegistrar::run() {
    auto next_refresh = Clock::now() + options_.refresh;
    while (true) {
        const auto wait = std::max(0ms, std::chrono::duration_cast<std::chrono::milliseconds>(next_refresh - Clock::now()));
        std::vector<const std::pair<const std::string, std::string>*> fresh;
        std::vector<std::string> marks, released;
        while (auto change = fresh.empty() && marks.empty() && released.empty() ? changes_.pop_for(wait)
                                                                                : changes_.try_pop()) {
            if (change->kind == Change::Kind::mark) {
                marks.push_back(std::move(change->qid));
            } else if (change->kind == Change::Kind::acquire) {
                auto [it, inserted] = held_.insert_or_assign(change->qid, change->canonical);
                if (inserted) fresh.push_back(&*it);
            } else {
                // `fresh` points into `held_`: forget the pointer before the entry.
                std::erase_if(fresh, [&](const auto* q) { return q->first == change->qid; });
                if (held_.erase(change->qid)) released.push_back(std::move(change->qid));
            }
        }
        if (changes_.closed_and_drained()) return;
        // A query released and acquired again in one round is held: its release is moot.
        std::erase_if(released, [&](const std::string& qid) { return held_.count(qid) > 0; });
        end_holds(released);
        if (!lease(fresh)) next_refresh = Clock::now();  // retry everything once Redis is back
        announce_marks(marks);  // after the leases: the ingest learns of a new query first
        if (Clock::now() >= next_refresh) {
            std::vector<const std::pair<const std::string, std::string>*> all;
            for (const auto& q : held_) all.push_back(&q);
            const bool ok = lease(all);
            if (ok) backoff_.reset();
            next_refresh = Clock::now() + (ok ? options_.refresh : backoff_.next());
        }
    }
}

}  // namespace birdwatch
