#pragma once
#include "common/config.h"
#include "ingest/pipeline.h"
#include "ingest/publisher.h"
#include "ingest/query_follower.h"
#include "ingest/sources/replay_source.h"
#include "ingest/sources/synthetic_source.h"

#include <string>
#include <vector>

namespace birdwatch {

struct IngestConfig {
    std::string log_level;
    std::string source_kind;  // "synthetic" | "replay"
    SyntheticOptions synthetic;
    ReplayOptions replay;
    std::size_t queue_capacity = 0;
    PipelineOptions pipeline;
    PublisherOptions publisher;
    FollowerOptions follower;
    std::chrono::milliseconds initial_query_load{5000};
};

ConfigSpec ingest_config_spec();
IngestConfig to_ingest_config(const nlohmann::json& values);  // throws ConfigError

}  // namespace birdwatch
