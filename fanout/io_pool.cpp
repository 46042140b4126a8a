#include "fanout/io_pool.h"

namespace birdwatch {

IoPool::IoPool(int threads, MetricsRegistry& metrics) : guard_("fanout-loop", metrics) {
    const int count = threads > 0 ? threads : static_cast<int>(usable_cores());
    for (int i = 0; i < count; ++i) contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
}

IoPool::~IoPool() { stop(); }

std::size_t IoPool::next() {
    const std::size_t index = next_;
    next_ = (next_ + 1) % contexts_.size();
    return index;
}

void IoPool::start() {
    for (auto& context : contexts_) {
        guards_.push_back(boost::asio::make_work_guard(*context));
        threads_.emplace_back([this, &context] { guard_.run([&context] { context->run(); }, {}); });
    }
}

void IoPool::stop() {
    guards_.clear();
    for (auto& context : contexts_) context->stop();
    for (auto& thread : threads_) thread.join();
    threads_.clear();
}

}  // namespace birdwatch
