#include "common/metrics.h"

#include <fmt/format.h>

#include <map>
#include <vector>

namespace birdwatch {

Counter& MetricsRegistry::counter(const std::string& name, const std::string& help, const std::string& labels) {
    std::lock_guard lock(mutex_);
    Counter& c = counters_.emplace_back();
    entries_.push_back({name, help, "counter", labels, &c, nullptr, {}, nullptr});
    return c;
}

double MetricsRegistry::value(const std::string& name, const std::string& labels) const {
    std::lock_guard lock(mutex_);
    for (const auto& refresh : collectors_) refresh();
    for (const Entry& e : entries_) {
        if (e.name != name || e.labels != labels) continue;
        if (e.counter) return static_cast<double>(e.counter->value());
        if (e.gauge) return static_cast<double>(e.gauge->value());
        if (e.read) return e.read();
    }
    return 0;
}

Gauge& MetricsRegistry::gauge(const std::string& name, const std::string& help, const std::string& labels) {
    std::lock_guard lock(mutex_);
    Gauge& g = gauges_.emplace_back();
    entries_.push_back({name, help, "gauge", labels, nullptr, &g, {}, nullptr});
    return g;
}

Histogram& MetricsRegistry::histogram(const std::string& name, const std::string& help) {
    std::lock_guard lock(mutex_);
    Histogram& h = histograms_.emplace_back();
    entries_.push_back({name, help, "histogram", "", nullptr, nullptr, {}, &h});
    return h;
}

void MetricsRegistry::counter_fn(const std::string& name, const std::string& help, std::function<double()> read,
                                 const std::string& labels) {
    std::lock_guard lock(mutex_);
    entries_.push_back({name, help, "counter", labels, nullptr, nullptr, std::move(read), nullptr});
}

void MetricsRegistry::gauge_fn(const std::string& name, const std::string& help, std::function<double()> read,
                               const std::string& labels) {
    std::lock_guard lock(mutex_);
    entries_.push_back({name, help, "gauge", labels, nullptr, nullptr, std::move(read), nullptr});
}

void MetricsRegistry::collector(std::function<void()> refresh) {
    std::lock_guard lock(mutex_);
    collectors_.push_back(std::move(refresh));
}

std::string MetricsRegistry::render_prometheus() const {
    std::lock_guard lock(mutex_);
    for (const auto& refresh : collectors_) refresh();
    std::map<std::string, std::vector<const Entry*>> by_name;  // one HELP/TYPE block per family
    for (const Entry& e : entries_) by_name[e.name].push_back(&e);
    std::string out;
    for (const auto& [name, family] : by_name) {
        out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, family.front()->help, name, family.front()->type);
        for (const Entry* e : family) {
            if (e->histogram) {
                for (std::size_t i = 0; i < Histogram::bounds.size(); ++i)
                    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, Histogram::bounds[i], e->histogram->bucket(i));
                out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, e->histogram->count(),
                                   name, e->histogram->sum(), name, e->histogram->count());
                continue;
            }
            const std::string series = e->labels.empty() ? name : fmt::format("{}{{{}}}", name, e->labels);
            if (e->counter)
                out += fmt::format("{} {}\n", series, e->counter->value());
            else if (e->gauge)
                out += fmt::format("{} {}\n", series, e->gauge->value());
            else
                out += fmt::format("{} {}\n", series, e->read());
        }
    }
    return out;
}

std::string MetricsRegistry::summary() const {
    std::lock_guard lock(mutex_);
    for (const auto& refresh : collectors_) refresh();
    std::string out;
    for (const Entry& e : entries_) {
        if (e.histogram) continue;  // too wide for a log line; see /metrics
        if (!out.empty()) out.push_back(' ');
        out += e.labels.empty() ? e.name : fmt::format("{}{{{}}}", e.name, e.labels);
        out.push_back('=');
        if (e.counter)
            out += std::to_string(e.counter->value());
        else if (e.gauge)
            out += std::to_string(e.gauge->value());
        else
            out += fmt::format("{}", e.read());
    }
    return out;
}

}  // namespace birdwatch
