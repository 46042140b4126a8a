#include "fanout/fanout_config.h"

#include <fmt/format.h>
#include <unistd.h>

namespace birdwatch {

namespace {

// This process's name among the replicas: host, port and pid, so two runs never share it.
std::string default_replica_id(int port) {
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    std::string id = fmt::format("{}:{}:{}", host, port, getpid());
    for (char& c : id)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' || c == '-')) c = '_';
    return id.substr(0, 100);
}

}  // namespace

ConfigSpec fanout_config_spec() {
    return {"birdwatch-fanout",
            "serves live searches over WebSocket: registers clients' queries in the Redis registry and pushes "
            "each payload of the channel `matches` to the clients whose queries it matched",
            "BIRDWATCH_FANOUT_",
            {
                {"log", {{"level", "info"}}},
                {"redis", with(redis_config_defaults(), {{"channel", "matches"}, {"replica_id", ""}})},
                {"http",
                 {{"address", "127.0.0.1"}, {"port", 8080}, {"threads", 0}, {"static_dir", ""},
                  {"max_header_bytes", 8192}, {"max_body_bytes", 16384}, {"reserved_descriptors", 64}}},
                {"hub", {{"inbox_payloads", 65536}, {"live_marker_timeout_ms", 2000}}},
                {"registry", with(registry::config_defaults(), {{"lease_ttl_ms", 30000}, {"refresh_ms", 10000}})},
                {"websocket",
                 {{"max_message_bytes", 16384}, {"max_queue_bytes", 4194304}, {"max_subscriptions", 16},
                  {"max_connections", 10000}, {"allowed_origins", nlohmann::json::array()}, {"token", ""},
                  {"messages_per_second", 20.0}, {"message_burst", 40.0}, {"error_budget", 50},
                  {"slow_close_ms", 10000}, {"idle_timeout_ms", 300000}, {"permessage_deflate", true},
                  {"own_compressors", 1000}}},
                {"shutdown", {{"drain_ms", 5000}}},
                {"stats", {{"interval_ms", 2000}}},
                {"store",
                 {{"kind", "none"},
                  {"sqlite", {{"path", "birdwatch.db"}}},
                  {"elasticsearch",
                   {{"url", "http://127.0.0.1:9200"}, {"index", "birdwatch-tweets"}, {"username", ""},
                    {"password", ""}, {"api_key", ""}, {"timeout_ms", 10000}}},
                  {"threads", 2},
                  {"queue", 1000},
                  {"max_page", 100},
                  {"max_candidates", 10000}}},
            },
            {"redis.password", "store.elasticsearch.password", "store.elasticsearch.api_key", "websocket.token"}};
}

FanoutConfig to_fanout_config(const nlohmann::json& v) {
    FanoutConfig c;
    c.log_level = v["log"]["level"];
    const auto& redis = v["redis"];
    c.redis = redis_endpoint_from(redis);
    c.channel = redis["channel"];
    c.replica_id = redis["replica_id"];
    if (c.replica_id.empty()) c.replica_id = default_replica_id(v["http"]["port"]);
    if (!registry::valid_replica_id(c.replica_id))
        throw ConfigError("redis.replica_id must be 1-100 letters, digits or . _ : -, got '" + c.replica_id + "'");
    const int port = v["http"]["port"];
    if (port < 0 || port > 65535) throw ConfigError("http.port must be 0..65535, got " + std::to_string(port));
    c.server.address = v["http"]["address"];
    c.server.port = static_cast<unsigned short>(port);
    c.loops = v["http"]["threads"];
    c.server.static_dir = v["http"]["static_dir"];
    c.server.session.max_message_bytes = v["websocket"]["max_message_bytes"];
    c.server.session.max_queue_bytes = v["websocket"]["max_queue_bytes"];
    const auto& ws = v["websocket"];
    c.server.session.max_subscriptions = ws["max_subscriptions"];
    c.server.session.messages_per_second = ws["messages_per_second"];
    c.server.session.message_burst = std::max(1.0, ws["message_burst"].get<double>());
    c.server.session.error_budget = std::max<std::size_t>(1, ws["error_budget"].get<std::size_t>());
    c.server.session.slow_close_after = std::chrono::milliseconds(ws["slow_close_ms"].get<int>());
    c.server.session.idle_timeout = std::chrono::milliseconds(ws["idle_timeout_ms"].get<int>());
    c.server.session.permessage_deflate = ws["permessage_deflate"];
    c.server.session.own_compressors = ws["own_compressors"];
    c.server.max_connections = ws["max_connections"];
    c.server.token = ws["token"];
    for (const auto& origin : ws["allowed_origins"]) {
        if (!origin.is_string()) throw ConfigError("websocket.allowed_origins must be a list of strings");
        c.server.allowed_origins.push_back(origin);
    }
    const auto& reg = v["registry"];
    c.registrar.redis = c.redis;
    c.registrar.keys = registry::keys_from(reg);
    c.registrar.replica_id = c.replica_id;
    check_registry_slot(c.redis, c.registrar.keys);
    c.registrar.lease_ttl = std::chrono::milliseconds(reg["lease_ttl_ms"].get<int>());
    c.registrar.refresh = std::chrono::milliseconds(reg["refresh_ms"].get<int>());
    if (c.registrar.refresh >= c.registrar.lease_ttl || c.registrar.refresh.count() <= 0)
        throw ConfigError("registry.refresh_ms must be positive and shorter than registry.lease_ttl_ms");
    c.drain = std::chrono::milliseconds(v["shutdown"]["drain_ms"].get<int>());
    const auto& store = v["store"];
    c.store_kind = store["kind"];
    if (c.store_kind != "none" && c.store_kind != "sqlite" && c.store_kind != "elasticsearch")
        throw ConfigError("store.kind must be \"none\", \"sqlite\" or \"elasticsearch\", got \"" + c.store_kind + "\"");
    c.sqlite = {store["sqlite"]["path"], true};
    c.elastic = elastic_options_from(store["elasticsearch"]);
    c.elastic.max_attempts = 1;  // a reader answers now or reports the store unavailable
    c.store_threads = store["threads"];
    c.stats_interval = std::chrono::milliseconds(v["stats"]["interval_ms"].get<int>());
    c.max_page = std::max<std::size_t>(1, store["max_page"].get<std::size_t>());
    c.store_queue = std::max<std::size_t>(1, store["queue"].get<std::size_t>());
    c.max_candidates = std::max<std::size_t>(1, store["max_candidates"].get<std::size_t>());
    c.server.session.max_page = c.max_page;
    c.server.max_header_bytes = std::max<std::size_t>(1024, v["http"]["max_header_bytes"].get<std::size_t>());
    c.server.max_body_bytes = v["http"]["max_body_bytes"];
    c.server.reserved_descriptors = v["http"]["reserved_descriptors"];
    c.hub_inbox_payloads = std::max<std::size_t>(256, v["hub"]["inbox_payloads"].get<std::size_t>());
    c.hub_live_marker_timeout = std::chrono::milliseconds(std::max(0, v["hub"]["live_marker_timeout_ms"].get<int>()));
    return c;
}

}  // namespace birdwatch
