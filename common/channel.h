#pragma once
// A bounded multi-producer/multi-consumer queue: the "conveyor belt" that joins
// two components. A producer never learns who consumes; closing the belt lets
// the consumer drain what is left and then stop.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <vector>

namespace birdwatch {

template <typename T>
class BoundedChannel {
public:
    explicit BoundedChannel(std::size_t capacity)
        : capacity_(capacity == 0 ? 1 : capacity), resume_below_(capacity_ / 2) {}

    BoundedChannel(const BoundedChannel&) = delete;
    BoundedChannel& operator=(const BoundedChannel&) = delete;

    // Blocks while the belt is full. Returns false (and drops the item) once closed.
    bool push(T item) {
        std::unique_lock lock(mutex_);
        if (!closed_ && items_.size() >= capacity_) {
            ++blocked_producers_;
            not_full_.wait(lock, [&] { return closed_ || items_.size() < capacity_; });
            --blocked_producers_;
        }
        if (closed_) return false;
        items_.push_back(std::move(item));
        lock.unlock();
        not_empty_.notify_one();
        return true;
    }

    // Never blocks. Returns false when full or closed.
    bool try_push(T item) {
        std::unique_lock lock(mutex_);
        if (closed_ || items_.size() >= capacity_) return false;
        items_.push_back(std::move(item));
        lock.unlock();
        not_empty_.notify_one();
        return true;
    }

    // Blocks until an item is available; empty optional once closed and drained.
    std::optional<T> pop() {
        std::unique_lock lock(mutex_);
        not_empty_.wait(lock, [&] { return closed_ || !items_.empty(); });
        return take_one(lock);
    }

    // Never blocks; empty optional when there is nothing to take.
    std::optional<T> try_pop() {
        std::unique_lock lock(mutex_);
        return take_one(lock);
    }

    // Waits at most `timeout`; empty optional on timeout or when closed and drained.
    std::optional<T> pop_for(std::chrono::milliseconds timeout) {
        std::unique_lock lock(mutex_);
        not_empty_.wait_for(lock, timeout, [&] { return closed_ || !items_.empty(); });
        return take_one(lock);
    }

    // Appends up to `max_items` to `out`, waiting at most `timeout` for the first one.
    // Returns the number appended (0 on timeout, or when closed and drained).
    std::size_t pop_batch(std::vector<T>& out, std::size_t max_items, std::chrono::milliseconds timeout) {
        std::unique_lock lock(mutex_);
        not_empty_.wait_for(lock, timeout, [&] { return closed_ || !items_.empty(); });
        std::size_t n = 0;
        while (n < max_items && !items_.empty()) {
            out.push_back(std::move(items_.front()));
            items_.pop_front();
            ++n;
        }
        const bool wake = n > 0 && wakes_producers();
        lock.unlock();
        if (wake) not_full_.notify_all();
        return n;
    }

    void close() {
        {
            std::lock_guard lock(mutex_);
            closed_ = true;
        }
        not_empty_.notify_all();
        not_full_.notify_all();
    }

    bool closed() const {
        std::lock_guard lock(mutex_);
        return closed_;
    }

    bool closed_and_drained() const {
        std::lock_guard lock(mutex_);
        return closed_ && items_.empty();
    }

    std::size_t size() const {
        std::lock_guard lock(mutex_);
        return items_.size();
    }

    std::size_t capacity() const { return capacity_; }

    // Producers waiting in push() for room: backpressure as it happens.
    std::size_t blocked_producers() const {
        std::lock_guard lock(mutex_);
        return blocked_producers_;
    }

    // How often a take has woken blocked producers (once per drain to half, not per item).
    std::uint64_t producer_wakeups() const {
        std::lock_guard lock(mutex_);
        return producer_wakeups_;
    }

private:
    std::optional<T> take_one(std::unique_lock<std::mutex>& lock) {
        if (items_.empty()) return std::nullopt;
        T item = std::move(items_.front());
        items_.pop_front();
        const bool wake = wakes_producers();
        lock.unlock();
        if (wake) not_full_.notify_all();
        return item;
    }

    // Under the lock, after a take: whether blocked producers are to be woken now.
    bool wakes_producers() {
        if (blocked_producers_ == 0 || items_.size() > resume_below_) return false;
        ++producer_wakeups_;
        return true;
    }

    const std::size_t capacity_;
    // A producer blocked on a full belt is woken once it has drained to half, not
    // once per item: otherwise producer and consumer trade places (two context
    // switches) for every item while the consumer is the slower one.
    const std::size_t resume_below_;
    mutable std::mutex mutex_;
    std::condition_variable not_empty_;
    std::condition_variable not_full_;
    std::deque<T> items_;
    bool closed_ = false;
    std::size_t blocked_producers_ = 0;
    std::uint64_t producer_wakeups_ = 0;
};

}  // namespace birdwatch
