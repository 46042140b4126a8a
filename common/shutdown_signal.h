#pragma once
// SIGINT/SIGTERM as a value to wait on. Construct it first in main(), before any
// thread starts, so every thread inherits the blocked mask and only this waits.

#include <chrono>

namespace birdwatch {

class ShutdownSignal {
public:
    ShutdownSignal();
    // Returns the signal number, or 0 when `timeout` passed without one.
    int wait_for(std::chrono::milliseconds timeout);
};

}  // namespace birdwatch
