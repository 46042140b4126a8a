// A fanout replica's per-connection limits, each with its metric and its message.

#include "tests/support/daemons.h"
#include "tests/support/live_search.h"
#include "tests/support/redis_server.h"
#include "tests/support/ws_client.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <unistd.h>

using namespace birdwatch;
using namespace birdwatch::test;
using namespace std::chrono_literals;
using nlohmann::json;

TEST_CASE("fanout limits: connections, Origin, token, message rate and error budget", "[fanout]") {
    TempDir dir;
    RedisServer redis(dir);
    const unsigned short port = free_port();
    ChildProcess fanout = start_fanout(
        dir, "fanout", redis.port(), port,
        {"--websocket.max_connections=3", R"(--websocket.allowed_origins=["https://ok.example"])",
         "--websocket.messages_per_second=2", "--websocket.message_burst=4", "--websocket.error_budget=6"},
        {"BIRDWATCH_FANOUT_WEBSOCKET_TOKEN=s3cret"});
    WsIo io;
    const std::string with_token = "/ws?token=s3cret";
    WsClient no_token(io), wrong_origin(io);
    CHECK_FALSE(no_token.connect(port, "/ws", 5s, "https://ok.example"));
    CHECK_FALSE(wrong_origin.connect(port, with_token, 5s, "https://evil.example"));
    CHECK(metric(port, "birdwatch_fanout_upgrades_refused_total{reason=\"token\"}") == 1);
    CHECK(metric(port, "birdwatch_fanout_upgrades_refused_total{reason=\"origin\"}") == 1);

    // The token bucket: a burst of 4 is served, the rest of a flood is answered "rate_limited".
    WsClient flood(io);
    REQUIRE(flood.connect(port, with_token, 5s, "https://ok.example"));
    for (int i = 0; i < 8; ++i) flood.send(R"({"type":"subscribe","query":"cats"})");
    REQUIRE(flood.wait_for_messages(8, 5s));
    int subscribed = 0, limited = 0;
    for (const auto& m : flood.messages()) {
        const json reply = json::parse(m);
        subscribed += reply["type"] == "subscribed";
        limited += reply.value("code", "") == "rate_limited";
    }
    CHECK(subscribed == 4);
    CHECK(limited == 4);
    CHECK(flood.is_open());

    // Errors spend a budget; when it is gone the connection is closed with 1008.
    std::this_thread::sleep_for(2s);  // refill the bucket
    for (int i = 0; i < 2; ++i) flood.send("not json");
    REQUIRE(wait_until([&] { return !flood.is_open(); }, 5s));
    CHECK(flood.close_code() == 1008);
    CHECK(metric(port, "birdwatch_fanout_error_budget_closes_total") == 1);

    // Capacity: the fourth connection is refused while three are open.
    REQUIRE(wait_until([&] { return metric(port, "birdwatch_fanout_connections") == 0; }, 5s));
    std::vector<WsClient> clients;
    for (int i = 0; i < 3; ++i) {
        clients.emplace_back(io);
        INFO("client " << i << ": " << clients.back().error());
        REQUIRE(clients.back().connect(port, with_token, 5s, "https://ok.example"));
    }
    REQUIRE(wait_until([&] { return metric(port, "birdwatch_fanout_connections") == 3; }, 5s));
    WsClient fourth(io);
    CHECK_FALSE(fourth.connect(port, with_token, 5s, "https://ok.example"));
    CHECK(metric(port, "birdwatch_fanout_upgrades_refused_total{reason=\"capacity\"}") == 1);
}

TEST_CASE("a client that never reads is dropped, fast clients keep receiving, memory stays bounded", "[fanout]") {
    TempDir dir;
    RedisServer redis(dir);
    const unsigned short port = free_port();
    ChildProcess fanout = start_fanout(dir, "fanout", redis.port(), port,
                                       {"--websocket.max_queue_bytes=262144", "--websocket.slow_close_ms=500"});
    WsIo io;
    WsClient fast(io);
    REQUIRE(fast.connect(port));
    subscribe(fast, "the OR hoy OR heute OR amor");
    const int stalled = connect_and_stall(port, "the OR hoy OR heute OR amor");
    REQUIRE(stalled >= 0);
    ChildProcess ingest = start_ingest(dir, "ingest", redis.port(), {"--source.synthetic.rate=4000", "--store.kind=none"});
    const bool dropped = wait_until([&] { return metric(port, "birdwatch_fanout_slow_client_closes_total") == 1; }, 60s);
    INFO(http_get(port, "/metrics").body);
    REQUIRE(dropped);
    const std::size_t received = tweet_payloads(fast).size();
    REQUIRE(wait_until([&] { return tweet_payloads(fast).size() > received + 500; }, 10s));  // still flowing
    CHECK(fast.is_open());
    CHECK(metric(port, "birdwatch_fanout_frames_dropped_total") > 0);
    CHECK(rss_kib(fanout.pid()) < 200 * 1024);  // the stalled client's backlog was capped, then freed
    ingest.kill();
    // Every queued byte is accounted for: the stalled client's, its batch in flight included, were released.
    CHECK(wait_until([&] { return metric(port, "birdwatch_fanout_queued_bytes") == 0; }, 10s));
    ::close(stalled);
}
