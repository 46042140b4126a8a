#pragma once
// Counters and gauges rendered in the Prometheus text exposition format.
// Registration happens at startup; updates are lock-free atomics on hot paths.

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace birdwatch {

class Counter {
public:
    void inc(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
    std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> value_{0};
};

class Gauge {
public:
    void set(std::int64_t v) { value_.store(v, std::memory_order_relaxed); }
    void add(std::int64_t n) { value_.fetch_add(n, std::memory_order_relaxed); }
    std::int64_t value() const { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::int64_t> value_{0};
};

// A count kept by one thread (an event loop's own): a plain load and store, no locked
// instruction on the hot path. Any thread may read it; registered with counter_fn().
class LocalCounter {
public:
    void add(std::int64_t n) { value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
    std::int64_t value() const { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::int64_t> value_{0};
};

// A Prometheus histogram over fixed bucket bounds (seconds); lock-free observations.
class Histogram {
public:
    static constexpr std::array<double, 12> bounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                      0.1,   0.25,   0.5,   1,    2.5,   10};
    void observe(double seconds) {
        for (std::size_t i = 0; i < bounds.size(); ++i)
            if (seconds <= bounds[i]) buckets_[i].fetch_add(1, std::memory_order_relaxed);
        count_.fetch_add(1, std::memory_order_relaxed);
        sum_micros_.fetch_add(static_cast<std::uint64_t>(seconds > 0 ? seconds * 1e6 : 0), std::memory_order_relaxed);
    }
    std::uint64_t bucket(std::size_t i) const { return buckets_[i].load(std::memory_order_relaxed); }
    std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }
    double sum() const { return static_cast<double>(sum_micros_.load(std::memory_order_relaxed)) / 1e6; }

private:
    std::array<std::atomic<std::uint64_t>, bounds.size()> buckets_{};  // cumulative: each counts <= its bound
    std::atomic<std::uint64_t> count_{0};
    std::atomic<std::uint64_t> sum_micros_{0};
};

class MetricsRegistry {
public:
    // `labels` is the inside of the braces, e.g. R"(reason="redis_down")", or empty.
    // The same name may be registered with several label sets; help and type come from the first.
    Counter& counter(const std::string& name, const std::string& help, const std::string& labels = "");
    Gauge& gauge(const std::string& name, const std::string& help, const std::string& labels = "");
    Histogram& histogram(const std::string& name, const std::string& help);
    // A counter read when rendered (sums of per-loop LocalCounters).
    void counter_fn(const std::string& name, const std::string& help, std::function<double()> read,
                    const std::string& labels = "");
    // A gauge read when rendered (queue depths, ages).
    void gauge_fn(const std::string& name, const std::string& help, std::function<double()> read,
                  const std::string& labels = "");

    // Called before every render (under the registry's lock), so that series read by
    // counter_fn/gauge_fn from one snapshot it takes are consistent with each other.
    void collector(std::function<void()> refresh);

    // The current value of a counter or gauge series; 0 when there is none.
    double value(const std::string& name, const std::string& labels = "") const;

    std::string render_prometheus() const;
    // Every series as name{labels}=value on one line, for periodic log lines.
    std::string summary() const;

private:
    struct Entry {
        std::string name, help, type, labels;
        const Counter* counter = nullptr;
        const Gauge* gauge = nullptr;
        std::function<double()> read;
        const Histogram* histogram = nullptr;
    };
    mutable std::mutex mutex_;
    std::deque<Counter> counters_;  // deques keep addresses stable
    std::deque<Gauge> gauges_;
    std::deque<Histogram> histograms_;
    std::deque<Entry> entries_;
    std::vector<std::function<void()>> collectors_;
};

// One counter series told apart by one label whose values come from the code (a parser's
// reasons, an event's kind): a value's counter is registered the first time it is counted.
// For one counting thread.
class LabelledCounters {
public:
    LabelledCounters(MetricsRegistry& registry, std::string name, std::string help, std::string label)
        : registry_(registry), name_(std::move(name)), help_(std::move(help)), label_(std::move(label)) {}

    Counter& operator[](std::string_view value) {
        auto it = counters_.find(value);
        if (it == counters_.end())
            it = counters_
                     .emplace(std::string(value),
                              &registry_.counter(name_, help_, label_ + "=\"" + std::string(value) + "\""))
                     .first;
        return *it->second;
    }

private:
    MetricsRegistry& registry_;
    const std::string name_, help_, label_;
    std::map<std::string, Counter*, std::less<>> counters_;
};

}  // namespace birdwatch
