#include "ingest/store_ledger.h"

namespace birdwatch {

StoreLedger::StoreLedger(Spool& spool, MetricsRegistry& metrics) : spool_(spool) {
    books_.accepted = spool_.pending_records();  // left by the last run: accepted then, still to be stored
    metrics.collector([this] { published_ = snapshot(); });
    const auto read = [this](std::uint64_t Snapshot::*field) {
        return [this, field] { return static_cast<double>(published_.*field); };
    };
    metrics.counter_fn("birdwatch_store_accepted_total",
                       "Records (tweets, delete notices) safely in the spool: = stored + rejected + duplicates + "
                       "deletions + spool_records",
                       read(&Snapshot::accepted));
    metrics.counter_fn("birdwatch_store_stored_total", "Tweets written to the store", read(&Snapshot::stored));
    metrics.counter_fn("birdwatch_store_rejected_total", "Tweets the store refused for good (reason logged)",
                       read(&Snapshot::rejected));
    metrics.counter_fn("birdwatch_store_duplicates_total", "Tweets the store already held (same id)",
                       read(&Snapshot::duplicates));
    metrics.counter_fn("birdwatch_store_deletions_total", "Delete notices the store applied (X's compliance)",
                       read(&Snapshot::deletions));
    metrics.counter_fn("birdwatch_store_deleted_total", "Stored tweets that delete notices removed",
                       read(&Snapshot::deleted));
    metrics.gauge_fn("birdwatch_store_spool_records", "Tweets in the spool not yet in the store",
                     read(&Snapshot::pending));
    metrics.gauge_fn("birdwatch_store_spool_bytes", "Bytes in the spool not yet in the store",
                     read(&Snapshot::pending_bytes));
}

bool StoreLedger::append(std::span<const std::string> records, std::string& error, Spool::Appended& where) {
    std::lock_guard lock(mutex_);
    if (!spool_.append(records, error, &where)) return false;
    books_.accepted += records.size();
    return true;
}

bool StoreLedger::commit(const StoreOutcome& outcome, std::string& error) {
    std::lock_guard lock(mutex_);
    if (!spool_.commit(error)) {
        spool_.rewind();
        return false;
    }
    books_.stored += outcome.stored;
    books_.rejected += outcome.rejected;
    books_.duplicates += outcome.duplicates;
    books_.deletions += outcome.deletions;
    books_.deleted += outcome.deleted;
    return true;
}

StoreLedger::Snapshot StoreLedger::snapshot() const {
    std::lock_guard lock(mutex_);
    Snapshot s = books_;
    s.pending = spool_.pending_records();
    s.pending_bytes = spool_.pending_bytes();
    return s;
}

}  // namespace birdwatch
