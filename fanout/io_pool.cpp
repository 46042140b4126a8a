#include "fanout/io_pool.h"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>

namespace birdwatch {

unsigned usable_cores() {
    unsigned cores = std::max(1U, std::thread::hardware_concurrency());
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) cores = std::max(1, CPU_COUNT(&set));
    // cgroup v2: "max 100000" (no limit) or "<quota> <period>" in microseconds
    std::ifstream cpu_max("/sys/fs/cgroup/cpu.max");
    std::string quota;
    double period = 0;
    if (cpu_max >> quota >> period && quota != "max" && period > 0) {
        const double limit = std::ceil(std::stod(quota) / period);
        if (limit >= 1 && limit < cores) cores = static_cast<unsigned>(limit);
    }
    return cores;
}

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
