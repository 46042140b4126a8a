#pragma once
// The last line of defence of every thread a daemon starts. Input is read with
// non-throwing APIs, so nothing should escape a component's loop; when something
// does (a bug, or input that got past validation), it is logged once per kind with
// the component's name and the context, counted in
// birdwatch_internal_errors_total{component="..."}, and the component recovers: the
// item is skipped, or the loop starts again. A daemon never ends in std::terminate
// because of what it was sent.

#include "common/log.h"
#include "common/metrics.h"

#include <chrono>
#include <exception>
#include <functional>
#include <string>
#include <string_view>

namespace birdwatch {

class ThreadGuard {
public:
    ThreadGuard(std::string component, MetricsRegistry& metrics);

    // Runs one unit of work; false when it threw (reported, and the work is skipped).
    template <typename Work>
    bool attempt(std::string_view context, Work&& work) noexcept {
        try {
            work();
            return true;
        } catch (const std::exception& e) {
            report(context, e.what());
        } catch (...) {
            report(context, "unknown exception");
        }
        return false;
    }

    // A thread's body, run until it returns normally: after an exception it is
    // reported and the body starts again after `pause`.
    void run(const std::function<void()>& body, std::chrono::milliseconds pause = std::chrono::milliseconds(100)) noexcept;

    std::uint64_t errors() const { return errors_.value(); }

private:
    void report(std::string_view context, std::string_view what) noexcept;

    std::string component_;
    Counter& errors_;
    FirstOccurrence first_;
    std::shared_ptr<spdlog::logger> log_;
};

}  // namespace birdwatch
