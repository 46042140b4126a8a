// birdwatch-fanout:
//   Redis `matches` (cluster: its own `matches:<replica>`) ──▶ subscriber ──▶ hub ──(each loop's inbox)──▶ loop's sessions ──▶ WebSocket clients
//   sessions' subscriptions ──▶ hub ──(first/last subscriber)──▶ registrar ──▶ Redis registry
// The server starts before the subscription so /healthz answers while Redis comes
// up; shutdown drains clients first, then lets go of Redis.

#include "common/log.h"
#include "common/metrics.h"
#include "common/redis_subscriber.h"
#include "common/shutdown_signal.h"
#include "fanout/fanout_config.h"
#include "fanout/hub.h"
#include "fanout/io_pool.h"
#include "fanout/query_registrar.h"
#include "fanout/server.h"
#include "fanout/stats_reporter.h"
#include "fanout/store_reader.h"


#include <cstdlib>
#include <iostream>
#include <utility>

using namespace birdwatch;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
    ShutdownSignal shutdown;
    FanoutConfig config;
    try {
        const ConfigResult loaded = load_config(fanout_config_spec(), {argv + 1, argv + argc}, std::getenv);
        if (loaded.exit_now) return 0;
        config = to_fanout_config(loaded.values);
        init_logging("fanout", config.log_level);
    } catch (const std::exception& e) {
        std::cerr << "birdwatch-fanout: " << e.what() << "\n";
        return 2;
    }

    MetricsRegistry metrics;
    QueryRegistrar registrar(config.registrar, metrics);
    IoPool loops(config.loops, metrics);
    Hub hub(
        metrics, loops, [&](const std::string& qid, const std::string& query) { registrar.acquire(qid, query); },
        [&](const std::string& qid) { registrar.release(qid); },
        [&](const std::string& qid) { registrar.request_marker(qid); }, config.hub_inbox_payloads,
        config.hub_live_marker_timeout);
    // On a cluster the ingest routes to each replica only its own queries' matches.
    const std::string channel = config.redis.cluster ? config.channel + ":" + config.replica_id : config.channel;
    RedisSubscriber subscriber(
        config.redis, channel, [&hub](std::string payload) { hub.publish(std::move(payload)); }, metrics,
        [&hub, first = true]() mutable {
            if (!std::exchange(first, false)) hub.resubscribed();  // what was published meanwhile never came
        },
        [&hub] { hub.end_of_burst(); }, "birdwatch_redis", RedisSubscriber::Kind::sharded);
    std::function<std::unique_ptr<TweetStore>()> open_store;
    if (config.store_kind != "none")
        open_store = [&config]() -> std::unique_ptr<TweetStore> {
            if (config.store_kind == "sqlite") return std::make_unique<SqliteStore>(config.sqlite);
            return std::make_unique<ElasticStore>(config.elastic);
        };
    std::unique_ptr<StoreReader> store;
    if (open_store) {
        StoreReaderOptions reader{open_store, config.store_threads, config.store_queue, config.max_page,
                                  config.max_candidates};
        store = std::make_unique<StoreReader>(std::move(reader), metrics);
        store->start();
    }
    std::unique_ptr<Server> server;
    try {
        server = std::make_unique<Server>(config.server, loops, hub, store.get(), metrics,
                                          [&subscriber] { return subscriber.subscribed(); });
        server->start();
        loops.start();
    } catch (const std::exception& e) {
        spdlog::error("msg=\"cannot serve\" address={} port={} error={}", config.server.address,
                      config.server.port, logfmt(e.what()));
        return 1;
    }
    registrar.start();
    subscriber.start();
    StatsReporter stats({config.redis, "{birdwatch}:replicas", config.replica_id, config.stats_interval, open_store},
                        hub, metrics);
    if (config.stats_interval.count() > 0) stats.start();

    int signal = 0;
    while (!(signal = shutdown.wait_for(1000ms))) {
    }
    spdlog::info("msg=\"shutting down, draining clients\" signal={} clients={} drain_ms={}", signal, hub.size(),
                 config.drain.count());
    stats.stop();
    server->drain(config.drain);
    subscriber.stop();
    loops.stop();
    registrar.stop();
    if (store) store->stop();
    spdlog::info("msg=\"stopped\"");
    return 0;
}
