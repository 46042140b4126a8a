#include "common/thread_guard.h"

#include <thread>

namespace birdwatch {

ThreadGuard::ThreadGuard(std::string component, MetricsRegistry& metrics)
    : component_(std::move(component)),
      errors_(metrics.counter("birdwatch_internal_errors_total",
                              "Unexpected exceptions caught at the top of a component's thread (the component recovered)",
                              "component=\"" + component_ + "\"")),
      log_(make_logger(component_)) {}

void ThreadGuard::run(const std::function<void()>& body, std::chrono::milliseconds pause) noexcept {
    while (!attempt("thread", body)) std::this_thread::sleep_for(pause);
}

void ThreadGuard::report(std::string_view context, std::string_view what) noexcept {
    errors_.inc();
    try {
        if (first_.first(std::string(context) + '\0' + std::string(what)))
            log_->error("msg=\"unexpected exception, recovering (logged once per kind)\" component={} context={} error={}",
                        logfmt(component_), logfmt(context), logfmt(what));
    } catch (...) {  // logging itself failed (out of memory): the count stands
    }
}

}  // namespace birdwatch
