// birdwatch-ingest:
//   source ──lines──▶ pipeline (parse, percolate) ──publications──▶ publisher ──▶ Redis
//   query follower (Redis registry) ──query updates──▶ pipeline
// Started in dependency order (consumers first), stopped from the source down so
// every belt drains before its consumer exits.

#include "common/log.h"
#include "common/metrics.h"
#include "common/shutdown_signal.h"
#include "ingest/ingest_config.h"

#include <cstdlib>
#include <iostream>
#include <memory>

using namespace birdwatch;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<Source> make_source(const IngestConfig& config, BoundedChannel<StreamLine>& out) {
    if (config.source_kind == "replay") return std::make_unique<ReplaySource>(config.replay, out);
    return std::make_unique<SyntheticSource>(config.synthetic, out);
}

}  // namespace

int main(int argc, char** argv) {
    ShutdownSignal shutdown;
    IngestConfig config;
    try {
        const ConfigResult loaded = load_config(ingest_config_spec(), {argv + 1, argv + argc}, std::getenv);
        if (loaded.exit_now) return 0;
        config = to_ingest_config(loaded.values);
        init_logging("ingest", config.log_level);
    } catch (const std::exception& e) {
        std::cerr << "birdwatch-ingest: " << e.what() << "\n";
        return 2;
    }

    MetricsRegistry metrics;
    BoundedChannel<StreamLine> lines(config.queue_capacity);
    BoundedChannel<QueryUpdate> query_updates(config.queue_capacity);
    BoundedChannel<Publication> publications(config.queue_capacity);

    Publisher publisher(config.publisher, publications, metrics);
    Pipeline pipeline(config.pipeline, lines, query_updates, publications, metrics);
    QueryFollower follower(config.follower, query_updates, metrics);
    std::unique_ptr<Source> source;
    try {
        source = make_source(config, lines);
    } catch (const ConfigError& e) {
        spdlog::error("msg=\"{}\"", e.what());
        return 2;
    }

    publisher.start();
    pipeline.start();
    follower.start();
    if (!follower.wait_for_snapshot(config.initial_query_load))
        spdlog::warn("msg=\"query registry not loaded yet, starting the source anyway\" waited_ms={}",
                     config.initial_query_load.count());
    source->start();
    spdlog::info("msg=\"started\" source={} redis={}:{} channel={}", config.source_kind, config.publisher.redis.host,
                 config.publisher.redis.port, config.pipeline.matches_channel);

    while (!source->finished()) {
        if (const int signal = shutdown.wait_for(200ms)) {
            spdlog::info("msg=\"shutting down, draining belts\" signal={}", signal);
            break;
        }
    }
    source->stop();
    follower.stop();
    pipeline.join();
    publisher.join();
    spdlog::info("msg=\"stopped\"");
    return 0;
}
