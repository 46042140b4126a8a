#include "common/config.h"
#include "fanout/fanout_config.h"
#include "ingest/ingest_config.h"

#include <catch2/catch.hpp>

#include <fstream>
#include <map>

using namespace birdwatch;

namespace {
ConfigSpec spec() {
    return {"prog", "test", "BW_", {{"redis", {{"host", "127.0.0.1"}, {"port", 6379}}}, {"rate", 1.5}, {"loop", false}}};
}
EnvLookup env_of(std::map<std::string, std::string> vars) {
    return [vars = std::move(vars)](const char* name) -> const char* {
        auto it = vars.find(name);
        return it == vars.end() ? nullptr : it->second.c_str();
    };
}
std::string write_file(const std::string& text) {
    const std::string path = "/tmp/birdwatch-config-test-" + std::to_string(::getpid()) + ".json";
    std::ofstream(path) << text;
    return path;
}
}  // namespace

TEST_CASE("config layers: defaults < file < environment < flags", "[config]") {
    const std::string file = write_file(R"({"redis":{"host":"10.0.0.1","port":7000},"rate":2.5})");
    auto r = load_config(spec(), {"--config", file}, env_of({}));
    CHECK(r.values["redis"]["host"] == "10.0.0.1");
    CHECK(r.values["redis"]["port"] == 7000);
    CHECK(r.values["loop"] == false);

    r = load_config(spec(), {"--config", file}, env_of({{"BW_REDIS_PORT", "7001"}, {"BW_LOOP", "yes"}}));
    CHECK(r.values["redis"]["port"] == 7001);
    CHECK(r.values["loop"] == true);

    r = load_config(spec(), {"--config=" + file, "--redis.port=7002", "--rate", "9"}, env_of({{"BW_REDIS_PORT", "7001"}}));
    CHECK(r.values["redis"]["port"] == 7002);
    CHECK(r.values["rate"] == 9.0);
    CHECK(r.values["redis"]["host"] == "10.0.0.1");
}

TEST_CASE("config errors name the key and where the bad value came from", "[config]") {
    CHECK_THROWS_WITH(load_config(spec(), {"--redis.prot=1"}, env_of({})),
                      "unknown flag --redis.prot (see --help for the keys)");
    CHECK_THROWS_WITH(load_config(spec(), {"--redis.port=abc"}, env_of({})),
                      "redis.port must be an integer, got 'abc' (from flag --redis.port)");
    CHECK_THROWS_WITH(load_config(spec(), {}, env_of({{"BW_LOOP", "maybe"}})),
                      "loop must be a boolean (true/false), got 'maybe' (from environment BW_LOOP)");
    const std::string file = write_file(R"({"redis":{"hots":"x"}})");
    CHECK_THROWS_WITH(load_config(spec(), {"--config", file}, env_of({})),
                      Catch::Matchers::EndsWith("unknown config key 'redis.hots'"));
    const std::string typed = write_file(R"({"redis":{"port":"6379"}})");
    CHECK_THROWS_WITH(load_config(spec(), {"--config", typed}, env_of({})),
                      Catch::Matchers::EndsWith("redis.port must be an integer, got \"6379\""));
    CHECK_THROWS_WITH(load_config(spec(), {"--config", "/nonexistent.json"}, env_of({})),
                      "cannot read config file /nonexistent.json");
}

TEST_CASE("the shipped config files are accepted by the daemons' specs", "[config]") {
    const std::string dir = BIRDWATCH_SOURCE_DIR "/config/";
    auto r = load_config(ingest_config_spec(), {"--config", dir + "ingest.json"}, env_of({}));
    const IngestConfig c = to_ingest_config(r.values);
    CHECK(c.pipeline.matches_channel == "matches");
    CHECK(c.follower.keys.events == "{birdwatch}:query-events");
    CHECK_THROWS_WITH(to_ingest_config(load_config(ingest_config_spec(), {"--source.kind=twitter"}, env_of({})).values),
                      "source.kind must be \"synthetic\", \"replay\", \"jetstream\", \"x_v2\" or \"x_v1\", got \"twitter\"");
    const IngestConfig jetstream = to_ingest_config(
        load_config(ingest_config_spec(), {"--config", dir + "ingest.json", "--source.kind=jetstream"},
                    env_of({{"BIRDWATCH_INGEST_SOURCE_JETSTREAM_ENDPOINTS", R"(["ws://127.0.0.1:1/subscribe"])"}}))
            .values);
    CHECK(jetstream.jetstream.endpoints == std::vector<std::string>{"ws://127.0.0.1:1/subscribe"});
    CHECK(jetstream.jetstream.rewind == std::chrono::milliseconds(5000));
    BoundedChannel<StreamLine> lines(1);
    MetricsRegistry metrics;
    JetstreamOptions bad;
    bad.endpoints = {"https://jetstream.example/subscribe"};
    CHECK_THROWS_WITH(JetstreamSource(bad, lines, metrics),
                      "source.jetstream.endpoints: 'https://jetstream.example/subscribe': a Jetstream endpoint must "
                      "start with ws:// or wss://");
    JetstreamSource source(jetstream.jetstream, lines, metrics);
    CHECK(source.target("/subscribe", 0) == "/subscribe?wantedCollections=app.bsky.feed.post&maxMessageSizeBytes=1048576");
    CHECK(source.target("/subscribe", 42) ==
          "/subscribe?wantedCollections=app.bsky.feed.post&maxMessageSizeBytes=1048576&cursor=42");
    CHECK_THROWS_WITH(to_ingest_config(load_config(ingest_config_spec(), {"--source.kind=x_v1"}, env_of({
                                           {"BIRDWATCH_INGEST_SOURCE_X_CONSUMER_KEY", "k"},
                                           {"BIRDWATCH_INGEST_SOURCE_X_CONSUMER_SECRET", "s"},
                                           {"BIRDWATCH_INGEST_SOURCE_X_TOKEN", "t"},
                                           {"BIRDWATCH_INGEST_SOURCE_X_TOKEN_SECRET", "ts"}})).values),
                      "source.kind is \"x_v1\": set at least one of source.x.track, source.x.follow, source.x.locations");
    const std::string credentials = write_file(R"({"bearer_token":"from-file"})");
    const IngestConfig x = to_ingest_config(
        load_config(ingest_config_spec(), {"--config", dir + "ingest.json", "--source.kind=x_v2",
                                           "--source.x.credentials_file=" + credentials}, env_of({})).values);
    CHECK(x.stream.bearer_token == "from-file");
    CHECK(x.stream.base_url == "https://api.x.com");
    CHECK(x.stream.rules == std::vector<StreamRule>{{"#music OR concert lang:en", "music"}});
    r = load_config(fanout_config_spec(), {"--config", dir + "fanout.json"}, env_of({}));
    const FanoutConfig f = to_fanout_config(r.values);
    CHECK(f.channel == "matches");
    CHECK(f.server.session.max_message_bytes == 16384);
}
