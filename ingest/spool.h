#pragma once
// An append-only on-disk queue of records: the ingest's write-ahead log in front of
// the store. Records are appended before the store is written and committed
// (the checkpoint moves past them) once the store has them, so a crash or a dead
// store loses nothing that reached the spool; on restart, what lies between the
// checkpoint and the end is replayed, in order.
//
// Layout in `dir`: segment-<seq>.log files of [u32 length][u32 crc32][bytes] records,
// and `checkpoint` ("<seq> <offset>"), replaced atomically. A torn record at the end
// (a crash mid-write) is cut off on open. `source-position` holds where a resumable
// source (Jetstream) stands once everything before it is in the spool.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <vector>

namespace birdwatch {

struct SpoolOptions {
    enum class Fsync { always, interval, never };
    std::string dir;
    Fsync fsync = Fsync::interval;  // 'never' still survives a killed process (the kernel has the data)
    std::chrono::milliseconds fsync_interval{1000};
    std::uint64_t segment_bytes = 64ull << 20;
};

class Spool {
public:
    struct Position {
        std::uint64_t segment = 0;
        std::uint64_t offset = 0;
    };
    // Where one append put its records: their sequence numbers (counted from the
    // checkpoint found at open) and the position just past them.
    struct Appended {
        std::uint64_t first_seq = 0;
        std::uint64_t count = 0;
        std::uint64_t bytes = 0;
        Position end;
    };

    explicit Spool(SpoolOptions options);  // throws std::runtime_error when the directory is unusable
    ~Spool();
    Spool(const Spool&) = delete;
    Spool& operator=(const Spool&) = delete;

    // One appender thread and one consumer thread may use the spool at once.

    // Appender: appends the records; false (with `error`) when the disk refuses.
    bool append(std::span<const std::string> records, std::string& error, Appended* where = nullptr);
    // Appender, while idle: fsync what the interval policy still owes the disk.
    void sync_if_due();
    // Appender, after an append: the source can resume after `position` (replaced atomically;
    // synced with the records under fsync=always).
    bool save_source_position(std::int64_t position, std::string& error);
    // The position saved last, as found at open; 0 when none was.
    std::int64_t source_position() const { return source_position_at_open_; }

    // Consumer: reads up to `max` records (and, past the first, `max_bytes` bytes) after
    // what was read or committed already.
    std::size_t read(std::vector<std::string>& out, std::size_t max, std::size_t max_bytes = SIZE_MAX);
    // Consumer: the sequence number of the next record read() would return.
    std::uint64_t next_seq() const { return checkpoint_seq_ + read_records_; }
    // Consumer: it holds exactly these records in memory and they are next
    // (batch.first_seq == next_seq()): move past them without reading them back.
    void skip(const Appended& batch);
    // Consumer: everything read or skipped so far is safely stored elsewhere: move the checkpoint past it.
    bool commit(std::string& error);
    // Consumer: rewinds reading to the checkpoint (after a failed store write).
    void rewind();

    // Any thread (/metrics, the stats log).
    std::uint64_t pending_records() const { return pending_records_.load(std::memory_order_relaxed); }
    std::uint64_t pending_bytes() const { return pending_bytes_.load(std::memory_order_relaxed); }

private:
    std::string segment_path(std::uint64_t segment) const;
    std::string open_for_append(std::uint64_t segment);  // the error, or empty
    void sync(bool force);

    SpoolOptions options_;
    std::int64_t source_position_at_open_ = 0;
    // Appender's own.
    int append_fd_ = -1;
    std::uint64_t append_seq_ = 0;
    std::chrono::steady_clock::time_point last_sync_{};
    bool dirty_ = false;
    // Consumer's own.
    Position checkpoint_, read_;
    std::uint64_t checkpoint_seq_ = 0;
    int read_fd_ = -1;
    std::uint64_t read_fd_segment_ = UINT64_MAX;
    std::uint64_t read_records_ = 0, read_bytes_ = 0;
    // Shared: where the appended records end, and how many wait for a commit.
    mutable std::mutex mutex_;
    Position end_;
    std::atomic<std::uint64_t> pending_records_{0}, pending_bytes_{0};
};

}  // namespace birdwatch
