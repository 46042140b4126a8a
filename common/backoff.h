#pragma once
// Reconnect delays. Pure arithmetic: callers decide how to wait, so tests can
// assert schedules without sleeping.

#include <algorithm>
#include <chrono>

namespace birdwatch {

class Backoff {
public:
    enum class Growth { linear, exponential };

    Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, Growth growth)
        : initial_(initial), max_(max), growth_(growth) {}

    // The delay before the next attempt; each call advances the schedule.
    std::chrono::milliseconds next() {
        const long long factor = growth_ == Growth::linear ? attempts_ + 1LL : 1LL << std::min(attempts_, 30);
        const std::chrono::milliseconds delay = initial_ * factor;
        ++attempts_;
        return std::min(delay, max_);
    }

    void reset() { attempts_ = 0; }
    int attempts() const { return attempts_; }

private:
    std::chrono::milliseconds initial_;
    std::chrono::milliseconds max_;
    Growth growth_;
    int attempts_ = 0;
};

}  // namespace birdwatch
