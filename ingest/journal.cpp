#include "ingest/journal.h"

#include <algorithm>

namespace birdwatch {

using namespace std::chrono_literals;

namespace {
constexpr int attempts_after_close = 5;  // at shutdown, a disk that keeps refusing gets this many more tries
}

Journal::Journal(JournalOptions options, BoundedChannel<AcceptedTweet>& in, BoundedChannel<Publication>& publications,
                 StoreLedger* ledger, BoundedChannel<SpooledBatch>* to_store, MetricsRegistry& metrics)
    : options_(options),
      in_(in),
      publications_(publications),
      ledger_(ledger),
      to_store_(to_store),
      log_(make_logger("journal")),
      backoff_(50ms, 1s, Backoff::Growth::exponential),
      spool_failures_(metrics.counter("birdwatch_store_spool_failures_total",
                                      "Spool appends the disk refused (retried; the batch's publications wait)")),
      unspooled_(metrics.counter("birdwatch_store_unspooled_total",
                                 "Tweets dropped at shutdown because the disk kept refusing them (never published)")),
      read_back_(metrics.counter("birdwatch_store_read_back_batches_total",
                                 "Batches the store writer reads back from the spool because its belt was full")),
      guard_("journal", metrics) {
    metrics.gauge_fn("birdwatch_ingest_journal_queue_depth", "Accepted tweets waiting to be spooled",
                     [this] { return static_cast<double>(in_.size()); });
}

Journal::~Journal() { join(); }

void Journal::start() { thread_ = std::thread([this] { guard_.run([this] { run(); }); }); }

void Journal::join() {
    if (thread_.joinable()) thread_.join();
}

bool Journal::append_durably(std::span<AcceptedTweet> batch, Spool::Appended& where) {
    records_.clear();
    for (const AcceptedTweet& accepted : batch)
        if (!accepted.tweet.json.empty()) records_.push_back(accepted.tweet.json);
    if (records_.empty()) return true;  // only markers: nothing to make durable
    std::string error;
    int attempts_since_stop = 0;
    while (gave_up_ || !ledger_->append(records_, error, where)) {
        if (!gave_up_) spool_failures_.inc();
        if (!gave_up_ && backoff_.attempts() == 0)
            log_->error("msg=\"spool append failed; publishing waits until the disk takes it\" error={}",
                        logfmt(error));
        if (gave_up_ || ((stopping_ || in_.closed()) && ++attempts_since_stop > attempts_after_close)) {
            if (!gave_up_)
                log_->error("msg=\"shutting down while the disk refuses the spool; what is left is never published\"");
            gave_up_ = true;
            unspooled_.inc(batch.size());
            return false;
        }
        std::this_thread::sleep_for(backoff_.next());
    }
    if (backoff_.attempts() > 0) log_->info("msg=\"spool appends work again\"");
    backoff_.reset();
    return true;
}

// Before the batch is published: a source that resumes there re-sends nothing anyone saw.
void Journal::save_source_position(std::span<const AcceptedTweet> batch) {
    std::int64_t position = saved_position_;
    for (const AcceptedTweet& accepted : batch) position = std::max(position, accepted.position);
    if (position == saved_position_) return;
    std::string error;
    if (ledger_->save_source_position(position, error)) saved_position_ = position;
    else if (first_.first("position")) log_->warn("msg=\"cannot save the source position (logged once)\" error={}", logfmt(error));
}

void Journal::release(std::span<AcceptedTweet> batch) {
    for (AcceptedTweet& accepted : batch)
        for (Publication& publication : accepted.publications) publications_.push(std::move(publication));
}

void Journal::run() {
    std::vector<AcceptedTweet> popped;
    while (true) {
        popped.clear();
        in_.pop_batch(popped, options_.batch_size, 100ms);
        if (popped.empty()) {
            if (in_.closed_and_drained()) break;
            if (ledger_) ledger_->sync_if_due();
            continue;
        }
        if (!ledger_) {
            release(popped);
            continue;
        }
        // Cut by bytes too: one oversized batch becomes several.
        for (std::size_t from = 0; from < popped.size();) {
            std::size_t to = from, bytes = 0;
            while (to < popped.size() &&
                   (to == from || bytes + popped[to].tweet.json.size() <= options_.batch_max_bytes))
                bytes += popped[to++].tweet.json.size();
            const std::span<AcceptedTweet> part(popped.data() + from, to - from);
            from = to;
            Spool::Appended where;
            if (!append_durably(part, where)) continue;
            save_source_position(part);
            release(part);
            SpooledBatch spooled{{}, where};
            spooled.tweets.reserve(part.size());
            for (AcceptedTweet& accepted : part)
                if (!accepted.tweet.json.empty()) spooled.tweets.push_back(std::move(accepted.tweet));
            if (spooled.tweets.empty()) continue;
            if (!to_store_->try_push(std::move(spooled))) read_back_.inc();
        }
    }
    publications_.close();
    if (to_store_) to_store_->close();
}

}  // namespace birdwatch
