#pragma once
// The store's books: every record the spool accepted (a tweet, or a delete notice) is,
// at any moment, exactly one of stored, rejected (for good, by the store), duplicate
// (the store held its id), deletion (applied) or pending (in the spool). The spool and
// these counts change together under one lock, and /metrics reads them as one snapshot, so
//   accepted = stored + rejected + duplicates + deletions + pending
// holds in every scrape, not just when the pipeline is idle. What the spool holds at
// start (left by the last run) counts as accepted by this one.

#include "common/metrics.h"
#include "ingest/spool.h"

#include <mutex>

namespace birdwatch {

struct StoreOutcome {
    std::uint64_t stored = 0, rejected = 0, duplicates = 0, deletions = 0, deleted = 0;
};

class StoreLedger {
public:
    struct Snapshot {
        std::uint64_t accepted = 0, stored = 0, rejected = 0, duplicates = 0, deletions = 0, deleted = 0, pending = 0,
                      pending_bytes = 0;
    };

    StoreLedger(Spool& spool, MetricsRegistry& metrics);

    // The spool's appender.
    bool append(std::span<const std::string> records, std::string& error, Spool::Appended& where);
    void sync_if_due() { spool_.sync_if_due(); }
    bool save_source_position(std::int64_t position, std::string& error) {
        return spool_.save_source_position(position, error);
    }
    // The spool's consumer, after the store answered for what it read or skipped since
    // the last commit. On a failed commit the spool rewinds (the records will be written
    // again, and then count as duplicates) and nothing is counted.
    bool commit(const StoreOutcome& outcome, std::string& error);

    Snapshot snapshot() const;

private:
    Spool& spool_;
    mutable std::mutex mutex_;
    Snapshot books_;       // accepted, stored, rejected, duplicates (pending is the spool's)
    Snapshot published_;  // what /metrics shows: taken once per render, under the registry's lock
};

}  // namespace birdwatch
