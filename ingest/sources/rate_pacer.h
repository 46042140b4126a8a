#pragma once
// Paces a producer to `per_second` items (0 = unpaced). Compares the count so far
// with the count the elapsed time allows, so high rates do not depend on sleep precision.

#include <chrono>
#include <stop_token>
#include <thread>

namespace birdwatch {

class RatePacer {
public:
    explicit RatePacer(double per_second) : per_second_(per_second), start_(std::chrono::steady_clock::now()) {}

    // Waits until one more item is due; false if stop was requested meanwhile.
    bool wait_turn(const std::stop_token& stop) {
        if (per_second_ <= 0) return !stop.stop_requested();
        while (!stop.stop_requested()) {
            const double elapsed =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
            if (static_cast<double>(sent_) < elapsed * per_second_) {
                ++sent_;
                return true;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        return false;
    }

private:
    double per_second_;
    std::chrono::steady_clock::time_point start_;
    unsigned long long sent_ = 0;
};

}  // namespace birdwatch
