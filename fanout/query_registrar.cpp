#include "fanout/query_registrar.h"

#include <vector>

namespace birdwatch {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

QueryRegistrar::QueryRegistrar(RegistrarOptions options, MetricsRegistry& metrics)
    : options_(std::move(options)),
      changes_(100000),
      log_(make_logger("query-registrar")),
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
    if (qids.empty() || (!connection_.connected() && !connection_.connect(options_.redis, true).empty())) return;
    for (const auto& qid : qids) {
        const std::string event = R"({"v":1,"op":"mark","qid":")" + qid + "\"}";
        redisAppendCommand(connection_.context(), "PUBLISH %b %b", options_.keys.events.data(),
                           options_.keys.events.size(), event.data(), event.size());
    }
    for (std::size_t i = 0; i < qids.size(); ++i) {
        void* raw = nullptr;
        if (redisGetReply(connection_.context(), &raw) != REDIS_OK) {
            connection_.disconnect();
            return;
        }
        freeReplyObject(raw);
        marks_.inc();
    }
}

void QueryRegistrar::start() { thread_ = std::thread([this] { guard_.run([this] { run(); }); }); }

void QueryRegistrar::stop() {
    changes_.close();
    if (thread_.joinable()) thread_.join();
}

bool QueryRegistrar::lease(const std::vector<const std::pair<const std::string, std::string>*>& queries) {
    if (queries.empty()) return true;
    if (!connection_.connected()) {
        const std::string error = connection_.connect(options_.redis, true);
        if (!error.empty()) {
            if (!outage_logged_)
                log_->warn("msg=\"redis unavailable, leases will be renewed when it returns\" error={}", logfmt(error));
            outage_logged_ = true;
            return false;
        }
        outage_logged_ = false;
    }
    const std::string ttl = std::to_string(options_.lease_ttl.count());
    for (const auto* q : queries) {
        redisAppendCommand(connection_.context(), "EVAL %s 3 %b %b %b %b %b %b", registry::lease_script,
                           options_.keys.leases.data(), options_.keys.leases.size(), options_.keys.queries.data(),
                           options_.keys.queries.size(), options_.keys.events.data(), options_.keys.events.size(),
                           q->first.data(), q->first.size(), q->second.data(), q->second.size(), ttl.data(), ttl.size());
    }
    for (std::size_t i = 0; i < queries.size(); ++i) {
        void* raw = nullptr;
        if (redisGetReply(connection_.context(), &raw) != REDIS_OK) {
            log_->warn("msg=\"lost redis while renewing leases\" error={}", logfmt(connection_.context()->errstr));
            connection_.disconnect();
            outage_logged_ = true;
            return false;
        }
        auto* reply = static_cast<redisReply*>(raw);
        if (reply->type == REDIS_REPLY_INTEGER && reply->integer < 0) {
            conflicts_.inc();
            if (first_conflict_.first(queries[i]->first))
                log_->error("msg=\"the registry holds a different text under this query id; not leased "
                            "(logged once per id)\" qid={}", queries[i]->first);
        } else if (reply->type == REDIS_REPLY_INTEGER) {
            leases_.inc();
            announced_.inc(static_cast<std::uint64_t>(reply->integer));
        } else if (reply->type == REDIS_REPLY_ERROR && !outage_logged_) {
            log_->warn("msg=\"lease script failed\" error={}", logfmt(reply->str));
            outage_logged_ = true;
        }
        freeReplyObject(reply);
    }
    return true;
}

void QueryRegistrar::run() {
    auto next_refresh = Clock::now() + options_.refresh;
    while (true) {
        const auto wait = std::max(0ms, std::chrono::duration_cast<std::chrono::milliseconds>(next_refresh - Clock::now()));
        std::vector<const std::pair<const std::string, std::string>*> fresh;
        std::vector<std::string> marks;
        while (auto change = fresh.empty() && marks.empty() ? changes_.pop_for(wait) : changes_.try_pop()) {
            if (change->kind == Change::Kind::mark) {
                marks.push_back(std::move(change->qid));
            } else if (change->kind == Change::Kind::acquire) {
                auto [it, inserted] = held_.insert_or_assign(change->qid, change->canonical);
                if (inserted) fresh.push_back(&*it);
            } else {
                // `fresh` points into `held_`: forget the pointer before the entry.
                std::erase_if(fresh, [&](const auto* q) { return q->first == change->qid; });
                held_.erase(change->qid);
            }
        }
        if (changes_.closed_and_drained()) return;
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
