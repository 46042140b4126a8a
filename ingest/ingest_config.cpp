#include "ingest/ingest_config.h"

namespace birdwatch {

ConfigSpec ingest_config_spec() {
    return {"birdwatch-ingest",
            "streams tweets, matches them against the live-search queries in the Redis registry, and "
            "publishes each match on the Redis channel `matches`",
            "BIRDWATCH_INGEST_",
            {
                {"log", {{"level", "info"}}},
                {"redis",
                 {{"host", "127.0.0.1"}, {"port", 6379}, {"password", ""}, {"timeout_ms", 2000},
                  {"channel", "matches"}, {"firehose_channel", ""}}},
                {"registry",
                 {{"queries_key", "birdwatch:queries"}, {"leases_key", "birdwatch:leases"},
                  {"events_channel", "birdwatch:query-events"}, {"sweep_ms", 1000},
                  {"initial_load_timeout_ms", 5000}}},
                {"source",
                 {{"kind", "synthetic"},
                  {"synthetic", {{"seed", 1}, {"rate", 50.0}, {"count", 0}, {"start_ms", 0}}},
                  {"replay", {{"path", ""}, {"rate", 0.0}, {"loop", false}}}}},
                {"pipeline", {{"queue_capacity", 10000}, {"max_line_bytes", 1048576}}},
                {"publisher", {{"batch_size", 256}}},
            }};
}

IngestConfig to_ingest_config(const nlohmann::json& v) {
    IngestConfig c;
    c.log_level = v["log"]["level"];
    const auto& redis = v["redis"];
    c.publisher.redis = {redis["host"], redis["port"], redis["password"],
                         std::chrono::milliseconds(redis["timeout_ms"].get<int>())};
    c.pipeline.matches_channel = redis["channel"];
    c.pipeline.firehose_channel = redis["firehose_channel"];
    const auto& reg = v["registry"];
    c.follower.redis = c.publisher.redis;
    c.follower.keys = {reg["queries_key"], reg["leases_key"], reg["events_channel"]};
    c.follower.sweep_interval = std::chrono::milliseconds(std::max(10, reg["sweep_ms"].get<int>()));
    c.initial_query_load = std::chrono::milliseconds(reg["initial_load_timeout_ms"].get<int>());
    c.publisher.batch_size = std::max<std::size_t>(1, v["publisher"]["batch_size"].get<std::size_t>());
    const auto& source = v["source"];
    c.source_kind = source["kind"];
    if (c.source_kind != "synthetic" && c.source_kind != "replay")
        throw ConfigError("source.kind must be \"synthetic\" or \"replay\", got \"" + c.source_kind + "\"");
    const auto& synthetic = source["synthetic"];
    c.synthetic = {synthetic["seed"], synthetic["rate"], synthetic["count"], synthetic["start_ms"]};
    const auto& replay = source["replay"];
    c.replay = {replay["path"], replay["rate"], replay["loop"]};
    if (c.source_kind == "replay" && c.replay.path.empty())
        throw ConfigError("source.kind is \"replay\" but source.replay.path is empty");
    c.queue_capacity = std::max<std::size_t>(1, v["pipeline"]["queue_capacity"].get<std::size_t>());
    c.pipeline.max_line_bytes = v["pipeline"]["max_line_bytes"];
    return c;
}

}  // namespace birdwatch
