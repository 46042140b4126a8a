#include "common/shutdown_signal.h"

#include <csignal>
#include <ctime>

namespace birdwatch {

namespace {
sigset_t shutdown_set() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    return set;
}
}  // namespace

ShutdownSignal::ShutdownSignal() {
    std::signal(SIGPIPE, SIG_IGN);  // a peer that goes away is an error code, not a crash
    sigset_t set = shutdown_set();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int ShutdownSignal::wait_for(std::chrono::milliseconds timeout) {
    sigset_t set = shutdown_set();
    timespec ts{static_cast<time_t>(timeout.count() / 1000), static_cast<long>(timeout.count() % 1000 * 1000000)};
    const int signal = sigtimedwait(&set, nullptr, &ts);
    return signal > 0 ? signal : 0;
}

}  // namespace birdwatch
