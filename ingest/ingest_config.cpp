#include "ingest/ingest_config.h"

#include <algorithm>
#include <fstream>

namespace birdwatch {

ConfigSpec ingest_config_spec() {
    return {"birdwatch-ingest",
            "streams tweets, matches them against the live-search queries in the Redis registry, and "
            "publishes each match on the Redis channel `matches`",
            "BIRDWATCH_INGEST_",
            {
                {"log", {{"level", "info"}, {"stats_interval_ms", 10000}}},
                {"http", {{"address", "127.0.0.1"}, {"port", 8079}}},
                {"redis", with(redis_config_defaults(), {{"channel", "matches"}, {"firehose_channel", ""},
                                                         {"max_replicas", 4096}})},
                {"registry", with(registry::config_defaults(), {{"sweep_ms", 1000}, {"snapshot_grace_ms", 60000},
                                                                {"initial_load_timeout_ms", 5000}})},
                {"source",
                 {{"kind", "synthetic"},
                  {"synthetic", {{"seed", 1}, {"rate", 50.0}, {"count", 0}, {"start_ms", 0}}},
                  {"replay", {{"path", ""}, {"rate", 0.0}, {"loop", false}}},
                  {"x",
                   {{"base_url", ""}, {"credentials_file", ""}, {"bearer_token", ""}, {"consumer_key", ""},
                    {"consumer_secret", ""}, {"token", ""}, {"token_secret", ""},
                    {"rules", nlohmann::json::array()}, {"track", ""}, {"follow", ""}, {"locations", ""},
                    {"language", ""}, {"delimited", false}, {"stall_timeout_ms", 0}}},
                  {"jetstream",
                   {{"endpoints",
                     {"wss://jetstream1.us-east.bsky.network/subscribe", "wss://jetstream2.us-east.bsky.network/subscribe",
                      "wss://jetstream1.us-west.bsky.network/subscribe", "wss://jetstream2.us-west.bsky.network/subscribe"}},
                    {"wanted_dids", nlohmann::json::array()},
                    {"rewind_ms", 5000},
                    {"stall_timeout_ms", 30000},
                    {"connect_timeout_ms", 10000},
                    {"remember_posts", 100000},
                    {"ca_file", ""}}}}},
                {"pipeline", {{"queue_capacity", 10000}, {"max_line_bytes", 1048576}, {"recent_ids", 200000}}},
                {"publisher", {{"batch_size", 256}}},
                {"store",
                 {{"kind", "sqlite"},
                  {"sqlite", {{"path", "birdwatch.db"}}},
                  {"elasticsearch",
                   {{"url", "http://127.0.0.1:9200"}, {"index", "birdwatch-tweets"}, {"username", ""},
                    {"password", ""}, {"api_key", ""}, {"timeout_ms", 10000}}},
                  {"spool", {{"dir", "birdwatch-spool"}, {"fsync", "interval"}, {"fsync_interval_ms", 1000}}},
                  {"batch_size", 1000}, {"batch_max_bytes", 8388608}, {"drain_timeout_ms", 5000},
                  {"retention", {{"max_age_hours", 0}, {"max_rows", 0}, {"interval_ms", 60000}}}}},
            },
            {"source.x.bearer_token", "source.x.consumer_key", "source.x.consumer_secret", "source.x.token",
             "source.x.token_secret", "redis.password", "store.elasticsearch.password",
             "store.elasticsearch.api_key"}};
}

namespace {

// Credentials come from the environment or the config file, or from a JSON file of
// their own (source.x.credentials_file) that only the service user can read.
StreamOptions to_stream_options(const std::string& kind, const nlohmann::json& x, std::size_t max_line_bytes) {
    StreamOptions o;
    if (kind != "x_v2" && kind != "x_v1") return o;
    nlohmann::json secrets = x;
    const std::string file = x["credentials_file"];
    if (!file.empty()) {
        std::ifstream in(file);
        if (!in) throw ConfigError("source.x.credentials_file: cannot read " + file);
        const auto loaded = nlohmann::json::parse(in, nullptr, false);
        if (!loaded.is_object()) throw ConfigError("source.x.credentials_file: " + file + " is not a JSON object");
        for (const char* key : {"bearer_token", "consumer_key", "consumer_secret", "token", "token_secret"})
            if (loaded.contains(key) && loaded[key].is_string() && secrets[key].get<std::string>().empty())
                secrets[key] = loaded[key];
    }
    auto required = [&](const char* key) {
        const std::string value = secrets[key];
        if (value.empty())
            throw ConfigError(std::string("source.kind is \"") + kind + "\" but source.x." + key +
                              " is not set (environment BIRDWATCH_INGEST_SOURCE_X_" +
                              [&] { std::string u = key; for (char& ch : u) ch = static_cast<char>(std::toupper(ch)); return u; }() +
                              ", the config file, or source.x.credentials_file)");
        return value;
    };
    o.api = kind == "x_v2" ? StreamOptions::Api::x_v2 : StreamOptions::Api::x_v1;
    o.base_url = x["base_url"];
    if (o.base_url.empty()) o.base_url = kind == "x_v2" ? "https://api.x.com" : "https://stream.twitter.com";
    if (kind == "x_v2") {
        o.bearer_token = required("bearer_token");
        for (const auto& rule : x["rules"]) {
            if (!rule.is_object() || !rule.contains("value") || !rule["value"].is_string())
                throw ConfigError("source.x.rules: each rule must be an object with a \"value\" string (and an optional \"tag\")");
            o.rules.push_back({rule["value"], rule.value("tag", "")});
        }
    } else {
        o.oauth = {required("consumer_key"), required("consumer_secret"), required("token"), required("token_secret")};
        o.track = x["track"];
        o.follow = x["follow"];
        o.locations = x["locations"];
        o.language = x["language"];
        o.delimited = x["delimited"];
        if (o.track.empty() && o.follow.empty() && o.locations.empty())
            throw ConfigError("source.kind is \"x_v1\": set at least one of source.x.track, source.x.follow, source.x.locations");
    }
    o.stall_timeout = std::chrono::milliseconds(std::max(0, x["stall_timeout_ms"].get<int>()));  // 0: the API's own
    o.max_message_bytes = max_line_bytes;
    return o;
}

JetstreamOptions to_jetstream_options(const nlohmann::json& j, std::size_t max_line_bytes) {
    JetstreamOptions o;
    const auto strings = [](const nlohmann::json& list, const char* key) {
        std::vector<std::string> out;
        for (const auto& item : list) {
            if (!item.is_string()) throw ConfigError(std::string("source.jetstream.") + key + ": expected strings");
            out.push_back(item);
        }
        return out;
    };
    o.endpoints = strings(j["endpoints"], "endpoints");
    o.wanted_dids = strings(j["wanted_dids"], "wanted_dids");
    const auto ms = [&](const char* key, int least) {
        return std::chrono::milliseconds(std::max(least, j[key].get<int>()));
    };
    o.rewind = ms("rewind_ms", 0);
    o.stall_timeout = ms("stall_timeout_ms", 100);
    o.connect_timeout = ms("connect_timeout_ms", 100);
    o.remember_posts = std::clamp<std::size_t>(j["remember_posts"].get<std::size_t>(), 1, 10000000);
    o.max_message_bytes = max_line_bytes;
    o.ca_file = j["ca_file"];
    return o;
}

}  // namespace

IngestConfig to_ingest_config(const nlohmann::json& v) {
    IngestConfig c;
    c.log_level = v["log"]["level"];
    const auto& redis = v["redis"];
    c.publisher.redis = redis_endpoint_from(redis);
    c.pipeline.matches_channel = redis["channel"];
    c.pipeline.firehose_channel = redis["firehose_channel"];
    const auto& reg = v["registry"];
    c.follower.redis = c.publisher.redis;
    c.follower.keys = registry::keys_from(reg);
    check_registry_slot(c.follower.redis, c.follower.keys);
    c.pipeline.per_replica_channels = c.publisher.redis.cluster;
    c.pipeline.max_replicas = std::max<std::size_t>(1, redis["max_replicas"].get<std::size_t>());
    c.follower.sweep_interval = std::chrono::milliseconds(std::max(10, reg["sweep_ms"].get<int>()));
    c.pipeline.snapshot_grace = std::chrono::milliseconds(std::max(0, reg["snapshot_grace_ms"].get<int>()));
    c.initial_query_load = std::chrono::milliseconds(reg["initial_load_timeout_ms"].get<int>());
    c.publisher.batch_size = std::max<std::size_t>(1, v["publisher"]["batch_size"].get<std::size_t>());
    const auto& source = v["source"];
    c.source_kind = source["kind"];
    if (c.source_kind != "synthetic" && c.source_kind != "replay" && c.source_kind != "x_v2" &&
        c.source_kind != "x_v1" && c.source_kind != "jetstream")
        throw ConfigError("source.kind must be \"synthetic\", \"replay\", \"jetstream\", \"x_v2\" or \"x_v1\", got \"" +
                          c.source_kind + "\"");
    const auto& synthetic = source["synthetic"];
    c.synthetic = {synthetic["seed"], synthetic["rate"], synthetic["count"], synthetic["start_ms"]};
    const auto& replay = source["replay"];
    c.replay = {replay["path"], replay["rate"], replay["loop"]};
    if (c.source_kind == "replay" && c.replay.path.empty())
        throw ConfigError("source.kind is \"replay\" but source.replay.path is empty");
    c.stream = to_stream_options(c.source_kind, source["x"], v["pipeline"]["max_line_bytes"]);
    c.jetstream = to_jetstream_options(source["jetstream"], v["pipeline"]["max_line_bytes"]);
    c.http_address = v["http"]["address"];
    c.http_port = v["http"]["port"];
    c.stats_interval = std::chrono::milliseconds(v["log"]["stats_interval_ms"].get<int>());
    c.queue_capacity = std::max<std::size_t>(1, v["pipeline"]["queue_capacity"].get<std::size_t>());
    const auto& store = v["store"];
    c.store_kind = store["kind"];
    if (c.store_kind != "sqlite" && c.store_kind != "elasticsearch" && c.store_kind != "none")
        throw ConfigError("store.kind must be \"sqlite\", \"elasticsearch\" or \"none\", got \"" + c.store_kind + "\"");
    c.sqlite.path = store["sqlite"]["path"];
    c.elastic = elastic_options_from(store["elasticsearch"]);
    c.spool.dir = store["spool"]["dir"];
    const std::string fsync = store["spool"]["fsync"];
    if (fsync == "always") c.spool.fsync = SpoolOptions::Fsync::always;
    else if (fsync == "interval") c.spool.fsync = SpoolOptions::Fsync::interval;
    else if (fsync == "never") c.spool.fsync = SpoolOptions::Fsync::never;
    else throw ConfigError("store.spool.fsync must be \"always\", \"interval\" or \"never\", got \"" + fsync + "\"");
    c.spool.fsync_interval = std::chrono::milliseconds(store["spool"]["fsync_interval_ms"].get<int>());
    c.writer.batch_size = std::max<std::size_t>(1, store["batch_size"].get<std::size_t>());
    c.writer.batch_max_bytes = std::max<std::size_t>(1, store["batch_max_bytes"].get<std::size_t>());
    c.writer.retention_interval = std::chrono::milliseconds(store["retention"]["interval_ms"].get<int>());
    c.writer.drain_timeout = std::chrono::milliseconds(std::max(0, store["drain_timeout_ms"].get<int>()));
    c.retention_max_age_ms = store["retention"]["max_age_hours"].get<std::int64_t>() * 3600000;
    c.retention_max_rows = store["retention"]["max_rows"];
    c.pipeline.max_line_bytes = v["pipeline"]["max_line_bytes"];
    c.pipeline.recent_ids = std::min<std::size_t>(v["pipeline"]["recent_ids"].get<std::size_t>(), 10000000);
    return c;
}

}  // namespace birdwatch
