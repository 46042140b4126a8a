#pragma once
// One io_context per thread, each run by exactly one thread ("one loop per core").
// A connection lives on one loop for its whole life, so everything it touches
// there -- its socket, its output buffer, its loop's subscription index -- is
// single-threaded and needs no lock or strand.

#include "common/thread_guard.h"
#include "fanout/usable_cores.h"

#include <boost/asio/io_context.hpp>

#include <cstddef>
#include <memory>
#include <thread>
#include <vector>

namespace birdwatch {

class IoPool {
public:
    // `threads` <= 0: one per core this process may use (usable_cores()). A handler
    // that throws is reported through the guard and its loop runs on.
    IoPool(int threads, MetricsRegistry& metrics);
    ~IoPool();

    std::size_t size() const { return contexts_.size(); }
    boost::asio::io_context& context(std::size_t index) { return *contexts_[index]; }
    // Round robin: where the next connection goes.
    std::size_t next();

    void start();
    // Stops every loop and joins its thread; pending handlers are dropped.
    void stop();

private:
    std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
    std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guards_;
    std::vector<std::thread> threads_;
    std::size_t next_ = 0;
    ThreadGuard guard_;
};

}  // namespace birdwatch
