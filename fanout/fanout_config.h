#pragma once
#include "common/config.h"
#include "common/redis_connection.h"
#include "fanout/query_registrar.h"
#include "fanout/server.h"
#include "common/store/elastic_store.h"
#include "common/store/sqlite_store.h"

#include <chrono>
#include <string>

namespace birdwatch {

struct FanoutConfig {
    std::string log_level;
    RedisEndpoint redis;
    std::string channel;
    // This replica's name in the registry's holds, and (cluster mode) the suffix of the
    // channel it subscribes to: `<channel>:<replica_id>`.
    std::string replica_id;
    ServerOptions server;
    int loops = 0;  // http.threads: event loops (threads) serving connections, 0 = one per core
    RegistrarOptions registrar;
    std::string store_kind;  // "none" | "sqlite" | "elasticsearch"
    SqliteOptions sqlite;    // opened read-only
    ElasticOptions elastic;
    int store_threads = 2;
    std::size_t max_page = 100;
    std::size_t store_queue = 1000;        // store reads waiting; more are answered `busy`
    std::size_t max_candidates = 10000;    // rows one history/resume page may look at
    std::size_t hub_inbox_payloads = 65536;  // per loop; beyond it the oldest bursts are dropped
    // How long a new subscription waits for the ingest's live marker (0: not at all, as
    // without an ingest) before it starts where its loop stands.
    std::chrono::milliseconds hub_live_marker_timeout{2000};
    std::chrono::milliseconds stats_interval{2000};  // 0: no stats messages
    std::chrono::milliseconds drain{5000};
};

ConfigSpec fanout_config_spec();
FanoutConfig to_fanout_config(const nlohmann::json& values);  // throws ConfigError

}  // namespace birdwatch
