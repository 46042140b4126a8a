// The walking skeleton end to end, with real processes: redis-server, one ingest,
// two fanouts, WebSocket clients on both.

#include "common/tweet_parser.h"
#include "ingest/sources/synthetic_corpus.h"
#include "tests/support/daemons.h"
#include "tests/support/redis_server.h"
#include "tests/support/ws_client.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace birdwatch;
using namespace birdwatch::test;
using namespace std::chrono_literals;

namespace {

constexpr std::int64_t start_ms = 1700000000000;

// The tweet objects the ingest must publish for a seed, computed independently of it.
std::vector<std::string> expected_tweet_objects(std::uint64_t seed, std::size_t count) {
    SyntheticCorpus corpus(seed, start_ms, 1);
    TweetParser parser;
    std::vector<std::string> out;
    std::vector<Tweet> tweets;
    for (std::size_t i = 0; i < count; ++i) {
        tweets.clear();
        parser.parse(corpus.next(), tweets);
        out.emplace_back();
        append_tweet_json(out.back(), tweets.at(0));
    }
    return out;
}

std::string tweet_object_of(const std::string& payload) {
    const auto at = payload.find(",\"tweet\":");
    return at == std::string::npos ? std::string() : payload.substr(at + 9, payload.size() - at - 10);
}

std::vector<std::string> ids_of(const std::vector<std::string>& payloads) {
    std::vector<std::string> ids;
    for (const auto& p : payloads) ids.push_back(nlohmann::json::parse(p)["tweet"]["id"]);
    return ids;
}

}  // namespace

TEST_CASE("1,000 synthetic tweets reach 20 clients on two fanouts, intact and in publish order", "[fanout][e2e]") {
    TempDir dir;
    RedisServer redis(dir);
    const unsigned short ports[2] = {free_port(), free_port()};
    ChildProcess fanout_a = start_fanout(dir, "fanout-a", redis.port(), ports[0]);
    ChildProcess fanout_b = start_fanout(dir, "fanout-b", redis.port(), ports[1]);

    WsIo io;
    std::vector<WsClient> clients;
    for (int i = 0; i < 20; ++i) {
        clients.emplace_back(io);
        INFO("client " << i << ": " << clients.back().error());
        REQUIRE(clients.back().connect(ports[i % 2]));
    }
    // Both replicas must count their clients before the first tweet is published.
    REQUIRE(wait_until([&] {
        return http_get(ports[0], "/metrics").body.find("birdwatch_fanout_connections 10") != std::string::npos &&
               http_get(ports[1], "/metrics").body.find("birdwatch_fanout_connections 10") != std::string::npos;
    }, 5s));

    ChildProcess ingest = start_ingest(dir, "ingest", redis.port(),
                                       {"--source.synthetic.count=1000", "--source.synthetic.rate=0",
                                        "--source.synthetic.seed=42", "--source.synthetic.start_ms=" + std::to_string(start_ms)});
    const auto exit_code = ingest.wait_exit(30s);
    INFO(ingest.log_tail());
    REQUIRE(exit_code == 0);  // a finite source ends the daemon once every belt has drained

    const std::vector<std::string> expected = expected_tweet_objects(42, 1000);
    const std::vector<std::string> reference = clients[0].messages();
    for (std::size_t c = 0; c < clients.size(); ++c) {
        INFO("client " << c << " on fanout " << (c % 2 ? "b" : "a"));
        REQUIRE(clients[c].wait_for_messages(1000, 20s));
        const std::vector<std::string> got = clients[c].messages();
        REQUIRE(got.size() == 1000);
        for (std::size_t i = 0; i < got.size(); ++i) {
            INFO("message " << i);
            const auto payload = nlohmann::json::parse(got[i]);
            REQUIRE(payload["v"] == 1);
            REQUIRE(payload["type"] == "tweet");
            REQUIRE(tweet_object_of(got[i]) == expected[i]);  // intact, and in the order published
        }
        REQUIRE(got == clients[0].messages());  // byte-identical payloads on every client, either replica
        CHECK(clients[c].is_open());
    }
}

TEST_CASE("Redis killed and restarted mid-stream: ingest and fanouts reconnect, clients keep receiving", "[fanout][e2e]") {
    TempDir dir;
    RedisServer redis(dir);
    const unsigned short ports[2] = {free_port(), free_port()};
    ChildProcess fanout_a = start_fanout(dir, "fanout-a", redis.port(), ports[0]);
    ChildProcess fanout_b = start_fanout(dir, "fanout-b", redis.port(), ports[1]);
    WsIo io;
    std::vector<WsClient> clients;
    for (int i = 0; i < 4; ++i) {
        clients.emplace_back(io);
        REQUIRE(clients.back().connect(ports[i % 2]));
    }
    ChildProcess ingest = start_ingest(dir, "ingest", redis.port(), {"--source.synthetic.rate=200"});
    for (auto& c : clients) REQUIRE(c.wait_for_messages(50, 10s));

    redis.kill();
    REQUIRE(wait_until([&] { return http_get(ports[0], "/readyz").status == 503; }, 5s));
    REQUIRE(wait_until([&] { return http_get(ports[1], "/readyz").status == 503; }, 5s));
    CHECK(http_get(ports[0], "/healthz").status == 200);  // alive, just not ready
    std::this_thread::sleep_for(500ms);
    std::vector<std::size_t> before;
    for (auto& c : clients) before.push_back(c.message_count());
    for (std::size_t i = 0; i < clients.size(); ++i) CHECK(clients[i].is_open());

    redis.start();  // same port, empty: no subscriptions until the fanouts come back
    REQUIRE(wait_until([&] {
        return http_get(ports[0], "/readyz").status == 200 && http_get(ports[1], "/readyz").status == 200;
    }, 15s));
    for (std::size_t i = 0; i < clients.size(); ++i) {
        INFO("client " << i << ": " << clients[i].error() << "\ningest log:\n" << ingest.log_tail(1500));
        REQUIRE(clients[i].wait_for_messages(before[i] + 100, 15s));
        CHECK(clients[i].is_open());
        const auto ids = ids_of(clients[i].messages());
        for (std::size_t k = 1; k < ids.size(); ++k) REQUIRE(std::stoull(ids[k]) > std::stoull(ids[k - 1]));
    }
    const std::string metrics = http_get(ports[0], "/metrics").body;
    CHECK(metrics.find("birdwatch_redis_reconnects_total 1") != std::string::npos);
    CHECK(ingest.running());
}

TEST_CASE("a client message gets an error reply, an oversized one closes only that socket with 1009", "[fanout]") {
    TempDir dir;
    RedisServer redis(dir);
    const unsigned short port = free_port();
    ChildProcess fanout = start_fanout(dir, "fanout", redis.port(), port);
    WsIo io;
    WsClient client(io);
    REQUIRE(client.connect(port));
    client.send(R"({"type":"subscribe","query":"cats"})");
    REQUIRE(client.wait_for_messages(1, 5s));
    const auto reply = nlohmann::json::parse(client.messages()[0]);
    CHECK(reply["type"] == "error");
    CHECK(reply["code"] == "unsupported_message");
    CHECK(client.is_open());
    CHECK(http_get(port, "/nope").status == 404);

    WsClient oversized(io);
    REQUIRE(oversized.connect(port));
    oversized.send(std::string(16 * 1024 + 1, 'x'));
    REQUIRE(wait_until([&] { return !oversized.is_open(); }, 5s));
    CHECK(oversized.close_code() == 1009);
    CHECK(client.is_open());  // the other client is unaffected
    CHECK(http_get(port, "/healthz").body == "ok\n");
}

TEST_CASE("fanout drains on SIGTERM: clients get close 1001 and the process exits 0", "[fanout]") {
    TempDir dir;
    RedisServer redis(dir);
    const unsigned short port = free_port();
    ChildProcess fanout = start_fanout(dir, "fanout", redis.port(), port);
    WsIo io;
    WsClient client(io);
    REQUIRE(client.connect(port));
    REQUIRE(wait_until([&] { return http_get(port, "/metrics").body.find("birdwatch_fanout_connections 1") != std::string::npos; }, 5s));
    fanout.signal(SIGTERM);
    REQUIRE(wait_until([&] { return !client.is_open(); }, 5s));
    CHECK(client.close_code() == 1001);
    CHECK(fanout.wait_exit(10s) == 0);
}
