#pragma once
// The ids of the last `capacity` tweets the pipeline handled: streams repeat tweets
// (replays, reconnects, X's own duplicate deliveries), and a repeat within this window
// is neither published nor stored again. Bounded: the oldest id leaves as a new one comes.

#include <charconv>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_set>
#include <vector>

namespace birdwatch {

class RecentIds {
public:
    explicit RecentIds(std::size_t capacity) : ring_(capacity) { seen_.reserve(capacity); }

    // A decimal id is its own key (below 2^63, as tweet ids are); anything else gets a
    // stable key with the top bit set.
    static std::uint64_t key_of(const std::string& id) {
        std::uint64_t value = 0;
        const auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), value);
        if (ec == std::errc{} && end == id.data() + id.size()) return value;
        return std::hash<std::string>{}(id) | (std::uint64_t{1} << 63);
    }

    // True when `key` (key_of an id) is among the recent ones; otherwise remembers it.
    bool seen_before(std::uint64_t key) {
        if (ring_.empty()) return false;
        if (seen_.count(key)) return true;
        if (size_ == ring_.size()) seen_.erase(ring_[next_]);
        else ++size_;
        ring_[next_] = key;
        next_ = (next_ + 1) % ring_.size();
        seen_.insert(key);
        return false;
    }

    std::size_t size() const { return size_; }
    std::size_t capacity() const { return ring_.size(); }

private:
    std::vector<std::uint64_t> ring_;
    std::unordered_set<std::uint64_t> seen_;
    std::size_t next_ = 0, size_ = 0;
};

}  // namespace birdwatch
