#pragma once
// A source produces stream lines on its own thread into its output belt, and
// closes the belt when it ends (end of file, count reached) or is stopped.

#include "common/channel.h"
#include "common/thread_guard.h"
#include "ingest/stream_line.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <memory>
#include <stop_token>
#include <thread>

namespace birdwatch {

class Source {
public:
    explicit Source(BoundedChannel<StreamLine>& out) : out_(out) {}
    // Derived classes call stop() in their destructor: the thread runs their produce().
    virtual ~Source() = default;
    Source(const Source&) = delete;
    Source& operator=(const Source&) = delete;

    // An exception that escapes produce() is reported through a guard and produce()
    // runs again (a stream reconnects, a file is read anew) unless the source is stopping.
    void start(MetricsRegistry& metrics) {
        guard_ = std::make_unique<ThreadGuard>("source", metrics);
        thread_ = std::jthread([this](std::stop_token stop) {
            guard_->run([&] {
                if (!stop.stop_requested()) produce(stop);
            });
            finished_ = true;
            out_.close();
        });
    }

    // Idempotent; closing the belt also releases a producer blocked on a full belt.
    void stop() {
        if (!thread_.joinable()) return;
        thread_.request_stop();
        out_.close();
        thread_.join();
    }

    // Called before start() with the position the spool saved last (StreamLine::position):
    // a source that can resume there does. Others ignore it.
    virtual void resume_after(std::int64_t /*position*/) {}

    // True once the source ended by itself or was stopped.
    bool finished() const { return finished_; }

protected:
    virtual void produce(std::stop_token stop) = 0;

    // Waits `delay` unless stop is requested first (a reconnect's backoff); false when stopped.
    static bool sleep_unless_stopped(std::chrono::milliseconds delay, const std::stop_token& stop) {
        std::mutex m;
        std::condition_variable_any cv;
        std::unique_lock lock(m);
        return !cv.wait_for(lock, stop, delay, [] { return false; }) && !stop.stop_requested();
    }
    BoundedChannel<StreamLine>& out_;

private:
    std::atomic<bool> finished_{false};
    std::unique_ptr<ThreadGuard> guard_;
    std::jthread thread_;
};

}  // namespace birdwatch
