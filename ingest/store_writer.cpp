#include "ingest/store_writer.h"

#include <algorithm>

#include "common/clock.h"
#include "common/tweet_parser.h"

namespace birdwatch {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

StoreWriter::StoreWriter(StoreWriterOptions options, BoundedChannel<SpooledBatch>& in, TweetStore& store,
                         Spool& spool, StoreLedger& ledger, MetricsRegistry& metrics)
    : options_(std::move(options)),
      in_(in),
      store_(store),
      spool_(spool),
      ledger_(ledger),
      log_(make_logger("store-writer")),
      backoff_(100ms, 30s, Backoff::Growth::exponential),
      store_failures_(metrics.counter("birdwatch_store_write_failures_total", "Store writes that failed (retried)")),
      batches_(metrics.counter("birdwatch_store_batches_total", "Batches written to the store")),
      last_write_us_(metrics.gauge("birdwatch_store_last_write_microseconds", "Duration of the last store write")),
      guard_("store-writer", metrics) {
    metrics.gauge_fn("birdwatch_store_spool_oldest_seconds", "Age of the spool's backlog (0 when the store keeps up)",
                     [this] {
                         const std::int64_t since = backlog_since_ms_.load();
                         return since == 0 || spool_.pending_records() == 0
                                    ? 0.0
                                    : static_cast<double>(now_epoch_ms() - since) / 1000.0;
                     });
    metrics.gauge_fn("birdwatch_store_queue_depth", "Spooled batches waiting for the store writer in memory",
                     [this] { return static_cast<double>(in_.size()); });
}

StoreWriter::~StoreWriter() { join(); }

void StoreWriter::start() { thread_ = std::thread([this] { guard_.run([this] { run(); }); }); }

void StoreWriter::join() {
    if (thread_.joinable()) thread_.join();
}

bool StoreWriter::store_batch(std::span<const StoredTweet> batch, StoreOutcome& outcome) {
    const auto start = Clock::now();
    const StoreStatus status = store_.write(batch);
    last_write_us_.set(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count());
    if (status.ok()) {
        for (const std::string& rejection : status.rejections) {
            const std::string reason = rejection.substr(rejection.find(": ") + 2);  // "id: reason"
            if (first_rejection_.first(reason))
                log_->error("msg=\"store rejected a tweet for good (logged once per reason)\" detail={}",
                            logfmt(rejection));
        }
        outcome.rejected += status.rejections.size();
        const auto deletions = static_cast<std::size_t>(
            std::count_if(batch.begin(), batch.end(), [](const StoredTweet& s) { return s.deletion; }));
        outcome.duplicates += status.duplicates;
        outcome.deletions += deletions;
        outcome.deleted += status.deleted;
        outcome.stored += batch.size() - status.rejections.size() - status.duplicates - deletions;
        batches_.inc();
        if (outage_logged_) log_->info("msg=\"store is back, backlog replaying\" spooled={}", spool_.pending_records());
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

void StoreWriter::commit(const StoreOutcome& outcome) {
    std::string error;
    if (!ledger_.commit(outcome, error))
        log_->error("msg=\"spool commit failed; the batch will be written again\" error={}", logfmt(error));
}

void StoreWriter::replay_backlog(std::uint64_t until) {
    TweetParser parser;
    std::vector<std::string> records;
    std::vector<Tweet> tweets;
    std::vector<StoredTweet> batch;
    while (spool_.next_seq() < until && Clock::now() >= retry_at_) {
        records.clear();
        const auto wanted = static_cast<std::size_t>(std::min<std::uint64_t>(options_.batch_size, until - spool_.next_seq()));
        if (spool_.read(records, wanted, options_.batch_max_bytes) == 0) break;
        batch.clear();
        StoreOutcome outcome;
        for (auto& json : records) {
            tweets.clear();
            const ParseOutcome parsed = parser.parse(json, tweets);
            if (!parsed.deleted_id.empty()) {
                Tweet deleted;
                deleted.id = parsed.deleted_id;
                batch.push_back({std::move(deleted), std::move(json), true});
                continue;
            }
            if (parsed.kind != ParseOutcome::Kind::tweets) {
                // We wrote it, so only a damaged disk gets here: it cannot be stored.
                ++outcome.rejected;
                if (first_rejection_.first("unreadable spool record"))
                    log_->error("msg=\"spool record does not parse, counted as rejected (logged once)\" bytes={}",
                                json.size());
                continue;
            }
            batch.push_back({std::move(tweets[0]), std::move(json)});
        }
        if (!store_batch(batch, outcome)) {
            spool_.rewind();
            return;
        }
        commit(outcome);
    }
}

void StoreWriter::store_spooled(std::vector<SpooledBatch>& popped) {
    std::vector<StoredTweet> joined;
    for (std::size_t i = 0; i < popped.size();) {
        if (Clock::now() < retry_at_) return;  // the store is failing: all of it waits in the spool
        const Spool::Appended& head = popped[i].where;
        if (head.first_seq < spool_.next_seq()) {  // read back from the spool already
            ++i;
            continue;
        }
        if (head.first_seq > spool_.next_seq()) replay_backlog(head.first_seq);
        if (head.first_seq != spool_.next_seq()) return;  // the replay stopped: the store failed again
        // A run of consecutive batches, up to one store batch, written at once.
        std::size_t end = i + 1, tweets = head.count;
        std::uint64_t bytes = head.bytes;
        while (end < popped.size()) {
            const Spool::Appended& next = popped[end].where;
            const Spool::Appended& previous = popped[end - 1].where;
            if (next.first_seq != previous.first_seq + previous.count || tweets + next.count > options_.batch_size ||
                bytes + next.bytes > options_.batch_max_bytes)
                break;
            tweets += next.count;
            bytes += next.bytes;
            ++end;
        }
        std::span<const StoredTweet> run = popped[i].tweets;
        if (end > i + 1) {
            joined.clear();
            for (std::size_t k = i; k < end; ++k)
                std::move(popped[k].tweets.begin(), popped[k].tweets.end(), std::back_inserter(joined));
            run = joined;
        }
        StoreOutcome outcome;
        if (!store_batch(run, outcome)) return;
        for (std::size_t k = i; k < end; ++k) spool_.skip(popped[k].where);
        commit(outcome);
        backlog_since_ms_ = 0;
        i = end;
    }
}

void StoreWriter::run() {
    if (spool_.pending_records() > 0)
        log_->info("msg=\"replaying the spool left by the last run\" records={}", spool_.pending_records());
    std::vector<SpooledBatch> popped;
    auto next_retention = Clock::now() + options_.retention_interval;
    while (true) {
        popped.clear();
        // Gather up to one store batch, waiting at most batch_wait once the first has come.
        if (auto first = in_.pop_for(100ms)) {
            std::size_t tweets = first->tweets.size();
            popped.push_back(std::move(*first));
            const auto deadline = Clock::now() + options_.batch_wait;
            while (tweets < options_.batch_size && Clock::now() < deadline) {
                auto next = in_.pop_for(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
                if (!next) break;
                tweets += next->tweets.size();
                popped.push_back(std::move(*next));
            }
            store_spooled(popped);
        } else {
            replay_backlog(UINT64_MAX);  // idle: whatever only the spool holds
        }
        if (options_.retention && Clock::now() >= next_retention) {
            options_.retention();
            next_retention = Clock::now() + options_.retention_interval;
        }
        if (popped.empty() && in_.closed_and_drained()) break;
    }
    // Shutdown: flush, retrying a failing store until drain_timeout; what it still
    // refuses then stays in the spool for the next start.
    const auto give_up = Clock::now() + options_.drain_timeout;
    retry_at_ = {};
    while (true) {
        replay_backlog(UINT64_MAX);
        if (spool_.pending_records() == 0 || retry_at_ >= give_up) break;
        std::this_thread::sleep_until(retry_at_);
    }
    log_->info("msg=\"store writer stopped\" left_in_spool={}", spool_.pending_records());
}

}  // namespace birdwatch
