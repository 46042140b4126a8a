// The ingest daemon as a process: replay input with bad lines, and start-up errors.

#include "tests/support/daemons.h"
#include "tests/support/redis_server.h"
#include "tests/support/script_server.h"

#include <catch2/catch.hpp>

#include <fstream>

using namespace birdwatch::test;
using namespace std::chrono_literals;

TEST_CASE("replay: malformed lines, keep-alives and control messages are skipped and counted, tweets published",
          "[streams]") {
    TempDir dir;
    RedisServer redis(dir);
    const std::string path = dir.file("replay.ndjson");
    std::ofstream(path) << R"({"id_str":"1","text":"first","user":{"id_str":"9","screen_name":"a"}})" "\n"
                        << "this is not json\n"
                        << "\r\n"
                        << R"({"delete":{"status":{"id_str":"1"}}})" "\n"
                        << R"({"id_str":"2","text":"truncated obj)" "\n"
                        << R"({"data":{"id":"3","text":"v2","author_id":"9"},"includes":{"users":[{"id":"9","username":"a"}]}})" "\n";
    // A direct subscriber shows what reached the channel.
    ChildProcess subscriber({find_program("redis-cli"), "-p", std::to_string(redis.port()), "subscribe", "matches"},
                            dir.file("sub.log"));
    REQUIRE(wait_until([&] { return redis.command({"PUBSUB", "NUMSUB", "matches"}) == "matches 1"; }, 5s));
    // The firehose carries every tweet, matched or not: no query needs registering here.
    ChildProcess ingest = start_ingest(dir, "ingest", redis.port(),
                                       {"--source.kind=replay", "--source.replay.path=" + path,
                                        "--redis.firehose_channel=matches"});
    REQUIRE(ingest.wait_exit(10s) == 0);
    const std::string log = ingest.log_tail();
    CHECK(log.find("reason=\"not a JSON object\"") != std::string::npos);
    CHECK(log.find("control message (first of its kind)\" kind=delete") != std::string::npos);
    REQUIRE(wait_until([&] { return subscriber.log_tail().find("\"id\":\"3\"") != std::string::npos; }, 5s));
    const std::string received = subscriber.log_tail();
    CHECK(received.find("\"id\":\"1\"") != std::string::npos);
    CHECK(received.find("\"id\":\"2\"") == std::string::npos);
    CHECK(received.find("\"screen_name\":\"a\"") != std::string::npos);
}

TEST_CASE("ingest: bad configuration fails at start with a clear message and exit code 2", "[streams]") {
    TempDir dir;
    ChildProcess bad_port({BIRDWATCH_INGEST_BIN, "--redis.port=sixty"}, dir.file("a.log"));
    CHECK(bad_port.wait_exit(5s) == 2);
    CHECK(bad_port.log_tail().find("redis.port must be an integer, got 'sixty'") != std::string::npos);
    ChildProcess missing({BIRDWATCH_INGEST_BIN, "--source.kind=replay", "--source.replay.path=/nonexistent"},
                         dir.file("b.log"));
    CHECK(missing.wait_exit(5s) == 2);
    CHECK(missing.log_tail().find("cannot open '/nonexistent'") != std::string::npos);
}

TEST_CASE("ingest keeps running while Redis is down and counts what it drops", "[streams]") {
    TempDir dir;
    const unsigned short dead_port = free_port();
    const unsigned short http = free_port();
    ChildProcess ingest = start_ingest(dir, "ingest", dead_port,
                                       {"--source.synthetic.rate=500", "--registry.initial_load_timeout_ms=500",
                                        "--http.port=" + std::to_string(http)});
    // A second of tweets taken in since both components that need Redis said it is away.
    REQUIRE(wait_until([&] {
        const std::string log = ingest.log_tail(100000);
        return log.find("logger=publisher msg=\"redis unavailable") != std::string::npos &&
               log.find("logger=redis-subscriber msg=\"redis unavailable") != std::string::npos;
    }, 10s));
    const std::uint64_t then = metric(http, "birdwatch_ingest_tweets_total");
    REQUIRE(wait_until([&] { return metric(http, "birdwatch_ingest_tweets_total") >= then + 500; }, 15s));
    REQUIRE(ingest.running());
    CHECK(http_get(http, "/healthz").status == 200);
    ingest.signal(SIGTERM);
    REQUIRE(ingest.wait_exit(5s) == 0);
    const std::string log = ingest.log_tail();
    CHECK(log.find("redis unavailable, dropping payloads until it returns") != std::string::npos);
    // logged once per outage by each component that needs Redis, not once per tweet or per retry
    for (const char* line : {"logger=publisher msg=\"redis unavailable", "logger=redis-subscriber msg=\"redis unavailable"}) {
        INFO(line << "\n" << log);
        CHECK(log.find(line) != std::string::npos);
        CHECK(log.find(line) == log.rfind(line));
    }
    CHECK(log.find("query registry not loaded yet, starting the source anyway") != std::string::npos);
}

TEST_CASE("ingest on the X v2 stream: rejected credentials end it with exit 78 and a message naming them, "
          "and /metrics shows the stream counters while it runs", "[streams]") {
    TempDir dir;
    RedisServer redis(dir);
    ScriptServer x;
    const std::string rules = "/2/tweets/search/stream/rules";
    x.enqueue(rules, {200, "application/json", {R"({"data":[{"id":"1","value":"cats"}]})"}, {}, false});
    const std::string tweet = R"({"data":{"id":"5","text":"cats","author_id":"9"},"includes":{"users":[{"id":"9","username":"felix"}]}})";
    ScriptedResponse stream{200, "application/json", {tweet + "\r\n\r\n"}};
    stream.hold = 3s;
    x.enqueue("/2/tweets/search/stream", stream);
    x.enqueue("/2/tweets/search/stream", {401, "application/json", {R"({"title":"Unauthorized"})"}, {}, false});
    const unsigned short http_port = free_port();
    ChildProcess ingest(
        {BIRDWATCH_INGEST_BIN, "--redis.port", std::to_string(redis.port()), "--source.kind=x_v2",
         "--source.x.base_url=" + x.base_url(), R"(--source.x.rules=[{"value":"cats"}])",
         "--http.port=" + std::to_string(http_port), "--redis.firehose_channel=firehose", "--store.kind=none"},
        dir.file("ingest.log"), {"BIRDWATCH_INGEST_SOURCE_X_BEARER_TOKEN=sekrit-token"});
    REQUIRE(wait_until([&] {
        return http_get(http_port, "/metrics").body.find("birdwatch_stream_keepalives_total 1") != std::string::npos;
    }, 10s));
    const std::string metrics = http_get(http_port, "/metrics").body;
    CHECK(metrics.find("birdwatch_stream_messages_total 1") != std::string::npos);
    CHECK(metrics.find("birdwatch_ingest_tweets_total 1") != std::string::npos);
    CHECK(metrics.find("birdwatch_stream_seconds_since_last_byte") != std::string::npos);
    CHECK(http_get(http_port, "/healthz").status == 200);
    // After the stream ends the next attempt gets 401 (after the 250 ms network backoff).
    CHECK(ingest.wait_exit(15s) == 78);
    const std::string log = ingest.log_tail(20000);
    CHECK(log.find("HTTP 401: X rejected the bearer token") != std::string::npos);
    CHECK(log.find("sekrit-token") == std::string::npos);  // credentials are never logged
    CHECK(x.requests().at(1).headers.at("authorization") == "Bearer sekrit-token");
}

TEST_CASE("ingest: credentials are refused on the command line and masked by --print-config", "[streams]") {
    TempDir dir;
    ChildProcess flag({BIRDWATCH_INGEST_BIN, "--source.x.bearer_token=abc"}, dir.file("a.log"));
    CHECK(flag.wait_exit(5s) == 2);
    CHECK(flag.log_tail().find("source.x.bearer_token is a secret: set it in the environment "
                               "(BIRDWATCH_INGEST_SOURCE_X_BEARER_TOKEN) or the config file, never on the command line") !=
          std::string::npos);
    ChildProcess print({BIRDWATCH_INGEST_BIN, "--print-config"}, dir.file("b.log"),
                       {"BIRDWATCH_INGEST_SOURCE_X_BEARER_TOKEN=very-secret"});
    CHECK(print.wait_exit(5s) == 0);
    CHECK(print.log_tail().find("very-secret") == std::string::npos);
    CHECK(print.log_tail().find("(set, not shown)") != std::string::npos);
    ChildProcess missing({BIRDWATCH_INGEST_BIN, "--source.kind=x_v2"}, dir.file("c.log"));
    CHECK(missing.wait_exit(5s) == 2);
    CHECK(missing.log_tail().find("source.x.bearer_token is not set") != std::string::npos);
}
