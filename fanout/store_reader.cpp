#include "fanout/store_reader.h"

#include "common/query/query.h"
#include "fanout/client_protocol.h"

#include <algorithm>

namespace birdwatch {

using namespace std::chrono_literals;

StoreReader::StoreReader(StoreReaderOptions options, MetricsRegistry& metrics)
    : options_(std::move(options)),
      requests_(options_.queue_capacity),
      log_(make_logger("store-reader")),
      guard_("store-reader", metrics),
      served_(metrics.counter("birdwatch_fanout_store_reads_total", "History, resume and get requests served")),
      failed_(metrics.counter("birdwatch_fanout_store_read_failures_total", "Store reads that failed")),
      resumed_tweets_(metrics.counter("birdwatch_fanout_resumed_tweets_total",
                                      "Tweets sent in resume pages: back-filled after a gap or a reconnect")),
      busy_(metrics.counter("birdwatch_fanout_store_reads_refused_total", "Store reads refused: queue full")),
      unreadable_rows_(metrics.counter("birdwatch_fanout_store_rows_unreadable_total",
                                       "Stored tweets that could not be read back (left out of replies)")),
      cut_short_(metrics.counter("birdwatch_fanout_store_pages_cut_short_total",
                                 "History and resume pages that ran out of their scan budget (the reply says where to go on)")) {
    metrics.gauge_fn("birdwatch_fanout_store_queue_depth", "Store reads waiting", [this] {
        std::lock_guard lock(waiting_mutex_);
        return static_cast<double>(requests_.size() + waiting_.size());
    });
}

StoreReader::~StoreReader() { stop(); }

void StoreReader::start() {
    for (int i = 0; i < std::max(1, options_.threads); ++i)
        workers_.emplace_back([this] { guard_.run([this] { work(); }); });
}

void StoreReader::stop() {
    requests_.close();
    for (auto& w : workers_) w.join();
    workers_.clear();
}

bool StoreReader::submit(Request request) {
    bool room;
    {
        std::lock_guard lock(waiting_mutex_);
        room = requests_.size() + waiting_.size() < options_.queue_capacity;
    }
    if (room && requests_.try_push(std::move(request))) return true;
    busy_.inc();
    return false;
}

bool StoreReader::history(const std::string& qid, const std::string& canonical, std::size_t size, std::uint64_t before,
                          std::uint64_t wait_for, Reply reply) {
    PageRequest page{PageRequest::Order::newest_first, std::min(size, options_.max_page), before, 0, options_.max_candidates};
    return submit({Request::Kind::history, qid, canonical, page, 0, wait_for, 0, Clock::now() + options_.catch_up_wait,
                   std::move(reply)});
}

bool StoreReader::resume(const std::string& qid, const std::string& canonical, std::uint64_t since_id,
                         std::uint64_t before_id, std::uint64_t wait_for, Reply reply) {
    PageRequest page{PageRequest::Order::oldest_first, options_.max_page, before_id, since_id, options_.max_candidates};
    return submit({Request::Kind::resume, qid, canonical, page, 0, wait_for, before_id,
                   Clock::now() + options_.catch_up_wait, std::move(reply)});
}

bool StoreReader::get(std::uint64_t id, Reply reply) {
    return submit({Request::Kind::get, {}, {}, {}, id, 0, 0, {}, std::move(reply)});
}

void StoreReader::work() {
    std::unique_ptr<TweetStore> store;
    while (true) {
        bool waiting;
        {
            std::lock_guard lock(waiting_mutex_);
            waiting = !waiting_.empty();
        }
        auto request = requests_.pop_for(waiting ? 20ms : 500ms);
        if (!request && requests_.closed_and_drained()) break;
        if (request) handle(store, *request);
        for (Request& due : take_due()) handle(store, due);
    }
    // Closing: whatever still waits for the store is answered as it stands.
    for (Request& due : take_due()) {
        due.caught_up_to = 0;
        handle(store, due);
    }
}

void StoreReader::handle(std::unique_ptr<TweetStore>& store, Request& request) {
    const bool served = guard_.attempt("store read", [&] {
        if (!store) {
            try {
                store = options_.open_store();
            } catch (const std::exception& e) {
                failed_.inc();
                log_->warn("msg=\"cannot open the store\" error={}", logfmt(e.what()));
                request.reply(client::error_reply("store_unavailable", "the store cannot be opened right now"));
                return;
            }
        }
        if (set_aside(*store, request)) return;
        request.reply(serve(*store, request));
    });
    if (!served) {
        store.reset();  // a store in an unknown state is opened afresh for the next request
        guard_.attempt("store read reply", [&] { request.reply(client::error_reply("internal", "the read failed")); });
    }
}

bool StoreReader::set_aside(TweetStore& store, Request& request) {
    if (request.kind == Request::Kind::get || request.caught_up_to == 0) return false;
    StoreStatus status;
    const bool caught_up = store.get(std::to_string(request.caught_up_to), status).has_value();
    if (caught_up || !status.ok() || Clock::now() >= request.wait_until) {
        request.caught_up_to = 0;  // served now, as the store stands
        return false;
    }
    std::lock_guard lock(waiting_mutex_);
    waiting_.push_back(std::move(request));
    return true;
}

std::deque<StoreReader::Request> StoreReader::take_due() {
    // Each waiting resume is checked again on every pass (the check is one indexed read).
    std::deque<Request> due;
    std::lock_guard lock(waiting_mutex_);
    due.swap(waiting_);
    return due;
}

std::string StoreReader::serve(TweetStore& store, const Request& r) {
    StoreStatus status;
    if (r.kind == Request::Kind::get) {
        const auto tweet = store.get(std::to_string(r.id), status);
        if (!status.ok()) {
            failed_.inc();
            return client::error_reply("store_unavailable", status.message);
        }
        served_.inc();
        return client::found_reply(r.id, tweet);
    }
    const QueryParse parse = parse_query(r.canonical);
    if (!parse.query) return client::error_reply("bad_query", parse.error.message);
    const HistoryPage page = store.history(*parse.query, r.page, status);
    if (!status.ok()) {
        failed_.inc();
        return client::error_reply("store_unavailable", status.message);
    }
    served_.inc();
    unreadable_rows_.inc(page.skipped);
    if (page.next != 0 && page.tweets.size() < r.page.size) cut_short_.inc();
    if (r.kind == Request::Kind::history) return client::history_reply(r.qid, page.tweets, page.next);
    resumed_tweets_.inc(page.tweets.size());
    return client::resumed_reply(r.qid, page.tweets, page.next, r.before_id);
}

}  // namespace birdwatch
