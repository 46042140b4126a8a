#include "ingest/ingest_config.h"

namespace birdwatch {

ConfigSpec ingest_config_spec() {
    return {"birdwatch-ingest",
            "streams tweets, and publishes each one on the Redis channel `matches`",
            "BIRDWATCH_INGEST_",
            {
                {"log", {{"level", "info"}}},
                {"redis",
                 {{"host", "127.0.0.1"}, {"port", 6379}, {"password", ""}, {"timeout_ms", 2000},
                  {"channel", "matches"}}},
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
    c.publisher.channel = redis["channel"];
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
