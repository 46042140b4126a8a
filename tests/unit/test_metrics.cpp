#include "common/metrics.h"

#include <catch2/catch.hpp>

using namespace birdwatch;

TEST_CASE("metrics render in the Prometheus text format, one HELP/TYPE per family", "[metrics]") {
    MetricsRegistry m;
    m.counter("bw_dropped_total", "Dropped", R"(reason="a")").inc(3);
    m.counter("bw_dropped_total", "Dropped", R"(reason="b")").inc();
    m.gauge("bw_depth", "Depth").set(-2);
    m.gauge_fn("bw_ratio", "Ratio", [] { return 0.5; });
    CHECK(m.render_prometheus() ==
          "# HELP bw_depth Depth\n# TYPE bw_depth gauge\nbw_depth -2\n"
          "# HELP bw_dropped_total Dropped\n# TYPE bw_dropped_total counter\n"
          "bw_dropped_total{reason=\"a\"} 3\nbw_dropped_total{reason=\"b\"} 1\n"
          "# HELP bw_ratio Ratio\n# TYPE bw_ratio gauge\nbw_ratio 0.5\n");
}

TEST_CASE("histograms render cumulative buckets, sum and count", "[metrics]") {
    MetricsRegistry m;
    Histogram& h = m.histogram("bw_latency_seconds", "Latency");
    h.observe(0.0004);
    h.observe(0.02);
    h.observe(30);
    const std::string text = m.render_prometheus();
    CHECK(text.find("# TYPE bw_latency_seconds histogram\n") != std::string::npos);
    CHECK(text.find("bw_latency_seconds_bucket{le=\"0.001\"} 1\n") != std::string::npos);
    CHECK(text.find("bw_latency_seconds_bucket{le=\"0.025\"} 2\n") != std::string::npos);
    CHECK(text.find("bw_latency_seconds_bucket{le=\"10\"} 2\n") != std::string::npos);
    CHECK(text.find("bw_latency_seconds_bucket{le=\"+Inf\"} 3\n") != std::string::npos);
    CHECK(text.find("bw_latency_seconds_count 3\n") != std::string::npos);
    CHECK(h.sum() == Approx(30.0204).epsilon(1e-6));
}

TEST_CASE("a counter_fn renders as a counter, read when rendered, from LocalCounters", "[metrics]") {
    MetricsRegistry m;
    LocalCounter loops[2];
    m.counter_fn("bw_sent_total", "Sent", [&] { return static_cast<double>(loops[0].value() + loops[1].value()); });
    loops[0].add(5);
    loops[1].add(7);
    loops[1].add(-2);
    CHECK(m.render_prometheus() == "# HELP bw_sent_total Sent\n# TYPE bw_sent_total counter\nbw_sent_total 10\n");
    CHECK(m.value("bw_sent_total") == 10);
}
