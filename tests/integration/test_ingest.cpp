// The ingest daemon as a process: replay input with bad lines, and start-up errors.

#include "tests/support/daemons.h"
#include "tests/support/redis_server.h"

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
    ChildProcess ingest = start_ingest(dir, "ingest", dead_port,
                                       {"--source.synthetic.rate=500", "--registry.initial_load_timeout_ms=500"});
    REQUIRE(wait_until([&] { return ingest.log_tail().find("msg=\"started\"") != std::string::npos; }, 10s));
    std::this_thread::sleep_for(1500ms);
    REQUIRE(ingest.running());
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
