#pragma once
#include "common/config.h"
#include "ingest/pipeline.h"
#include "ingest/publisher.h"
#include "ingest/query_follower.h"
#include "ingest/sources/jetstream_source.h"
#include "ingest/sources/replay_source.h"
#include "ingest/sources/stream_source.h"
#include "ingest/spool.h"
#include "ingest/store_writer.h"
#include "common/store/elastic_store.h"
#include "common/store/sqlite_store.h"
#include "ingest/sources/synthetic_source.h"

#include <string>
#include <vector>

namespace birdwatch {

struct IngestConfig {
    std::string log_level;
    std::string source_kind;  // "synthetic" | "replay" | "jetstream" | "x_v2" | "x_v1"
    SyntheticOptions synthetic;
    ReplayOptions replay;
    StreamOptions stream;
    JetstreamOptions jetstream;
    std::string http_address;
    int http_port = 0;        // -1: no HTTP endpoints
    std::chrono::milliseconds stats_interval{10000};
    std::string store_kind;  // "sqlite" | "elasticsearch" | "none"
    SqliteOptions sqlite;
    ElasticOptions elastic;
    SpoolOptions spool;
    StoreWriterOptions writer;  // retention callback wired in main
    std::int64_t retention_max_age_ms = 0;
    std::uint64_t retention_max_rows = 0;
    std::size_t queue_capacity = 0;
    PipelineOptions pipeline;
    PublisherOptions publisher;
    FollowerOptions follower;
    std::chrono::milliseconds initial_query_load{5000};
};

// Exit status when X rejects the credentials: retrying cannot help, so service
// managers must not restart (systemd: RestartPreventExitStatus=78). EX_CONFIG.
inline constexpr int exit_rejected_credentials = 78;

ConfigSpec ingest_config_spec();
IngestConfig to_ingest_config(const nlohmann::json& values);  // throws ConfigError

}  // namespace birdwatch
