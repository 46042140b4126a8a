#include "ingest/store_writer.h"

#include "common/clock.h"
#include "common/tweet_parser.h"

namespace birdwatch {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

StoreWriter::StoreWriter(StoreWriterOptions options, BoundedChannel<StoredTweet>& in, TweetStore& store, Spool& spool,
                         MetricsRegistry& metrics)
    : options_(std::move(options)),
      in_(in),
      store_(store),
      spool_(spool),
      log_(make_logger("store-writer")),
      backoff_(100ms, 30s, Backoff::Growth::exponential),
      accepted_(metrics.counter("birdwatch_store_accepted_total", "Tweets safely in the spool (or the store)")),
      stored_(metrics.counter("birdwatch_store_stored_total", "Tweets written to the store")),
      store_failures_(metrics.counter("birdwatch_store_write_failures_total", "Store writes that failed (retried)")),
      rejected_(metrics.counter("birdwatch_store_rejected_total", "Tweets the store refused for good (reason logged)")),
      duplicates_(metrics.counter("birdwatch_store_duplicates_total", "Tweets the store already held (same id)")),
      spool_failures_(metrics.counter("birdwatch_store_spool_failures_total",
                                      "Batches the spool could not take (then written to the store directly)")),
      batches_(metrics.counter("birdwatch_store_batches_total", "Batches written to the store")),
      last_write_us_(metrics.gauge("birdwatch_store_last_write_microseconds", "Duration of the last store write")),
      guard_("store-writer", metrics) {
    metrics.gauge_fn("birdwatch_store_spool_records", "Tweets in the spool not yet in the store",
                     [this] { return static_cast<double>(spool_.pending_records()); });
    metrics.gauge_fn("birdwatch_store_spool_bytes", "Bytes in the spool not yet in the store",
                     [this] { return static_cast<double>(spool_.pending_bytes()); });
    metrics.gauge_fn("birdwatch_store_spool_oldest_seconds", "Age of the spool's backlog (0 when empty)", [this] {
        const std::int64_t since = backlog_since_ms_.load();
        return since == 0 || spool_.pending_records() == 0 ? 0.0 : static_cast<double>(now_epoch_ms() - since) / 1000.0;
    });
    metrics.gauge_fn("birdwatch_store_queue_depth", "Tweets waiting for the store writer",
                     [this] { return static_cast<double>(in_.size()); });
}

StoreWriter::~StoreWriter() { join(); }

void StoreWriter::start() { thread_ = std::thread([this] { guard_.run([this] { run(); }); }); }

void StoreWriter::join() {
    if (thread_.joinable()) thread_.join();
}

bool StoreWriter::store_batch(std::span<const StoredTweet> batch) {
    const auto start = Clock::now();
    const StoreStatus status = store_.write(batch);
    last_write_us_.set(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count());
    if (status.ok()) {
        rejected_.inc(status.rejections.size());
        for (const std::string& rejection : status.rejections) {
            const std::string reason = rejection.substr(rejection.find(": ") + 2);  // "id: reason"
            if (first_rejection_.first(reason))
                log_->error("msg=\"store rejected a tweet for good (logged once per reason)\" detail={}",
                            logfmt(rejection));
        }
        duplicates_.inc(status.duplicates);
        stored_.inc(batch.size() - status.rejections.size() - status.duplicates);
        batches_.inc();
        if (outage_logged_) log_->info("msg=\"store is back, backlog replaying\" spooled={}", spool_.pending_records());
        if (spool_.pending_records() <= batch.size()) backlog_since_ms_ = 0;
        outage_logged_ = false;
        backoff_.reset();
        return true;
    }
    store_failures_.inc();
    if (backlog_since_ms_.load() == 0) backlog_since_ms_ = now_epoch_ms();
    retry_at_ = Clock::now() + backoff_.next();
    if (!outage_logged_)
        log_->warn("msg=\"store write failed, spooling until it recovers\" error={}", logfmt(status.message));
    outage_logged_ = true;
    return false;
}

void StoreWriter::accept(std::vector<StoredTweet>& batch) {
    const bool backlog = spool_.pending_records() > 0;
    std::vector<std::string> records;
    records.reserve(batch.size());
    for (const auto& s : batch) records.push_back(s.json);
    std::string error;
    if (!spool_.append(records, error)) {
        // The disk refused: the store is the only place left. Never drop silently.
        spool_failures_.inc();
        log_->error("msg=\"spool append failed, writing to the store directly\" error={}", logfmt(error));
        while (!store_batch(batch)) std::this_thread::sleep_for(std::min(backoff_.next(), 1000ms));
        accepted_.inc(batch.size());
        return;
    }
    accepted_.inc(batch.size());
    // Nothing older waits: the batch in memory is exactly the spool's backlog.
    if (!backlog && Clock::now() >= retry_at_ && store_batch(batch)) {
        if (!spool_.commit_all(error)) log_->error("msg=\"spool commit failed\" error={}", logfmt(error));
    }
}

void StoreWriter::replay_backlog() {
    TweetParser parser;
    std::vector<std::string> records;
    std::vector<Tweet> tweets;
    std::vector<StoredTweet> batch;
    while (spool_.pending_records() > 0 && Clock::now() >= retry_at_) {
        records.clear();
        spool_.rewind();
        if (spool_.read(records, options_.batch_size, options_.batch_max_bytes) == 0) break;
        batch.clear();
        for (auto& json : records) {
            tweets.clear();
            if (parser.parse(json, tweets).kind != ParseOutcome::Kind::tweets) continue;  // cannot happen: we wrote it
            batch.push_back({std::move(tweets[0]), std::move(json)});
        }
        if (!store_batch(batch)) {
            spool_.rewind();
            return;
        }
        std::string error;
        if (!spool_.commit(error)) {
            log_->error("msg=\"spool commit failed\" error={}", logfmt(error));
            return;
        }
    }
}

void StoreWriter::run() {
    if (spool_.pending_records() > 0)
        log_->info("msg=\"replaying the spool left by the last run\" records={}", spool_.pending_records());
    std::vector<StoredTweet> batch;
    auto next_retention = Clock::now() + options_.retention_interval;
    while (true) {
        batch.clear();
        in_.pop_batch(batch, options_.batch_size, options_.batch_wait);
        // Cut by bytes too: one oversized batch becomes several.
        for (std::size_t from = 0; from < batch.size();) {
            std::size_t to = from, bytes = 0;
            while (to < batch.size() && (to == from || bytes + batch[to].json.size() <= options_.batch_max_bytes))
                bytes += batch[to++].json.size();
            std::vector<StoredTweet> part(std::make_move_iterator(batch.begin() + static_cast<std::ptrdiff_t>(from)),
                                          std::make_move_iterator(batch.begin() + static_cast<std::ptrdiff_t>(to)));
            accept(part);
            from = to;
        }
        replay_backlog();
        if (options_.retention && Clock::now() >= next_retention) {
            options_.retention();
            next_retention = Clock::now() + options_.retention_interval;
        }
        if (batch.empty() && in_.closed_and_drained()) break;
    }
    // Shutdown: one last attempt to flush; whatever the store still refuses stays in the spool.
    retry_at_ = {};
    replay_backlog();
    log_->info("msg=\"store writer stopped\" left_in_spool={}", spool_.pending_records());
}

}  // namespace birdwatch
