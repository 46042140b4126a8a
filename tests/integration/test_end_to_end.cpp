// The system end to end, with real processes: redis-server, one ingest, two
// fanouts, WebSocket clients on both, live-search queries through the registry.

#include "common/tweet_parser.h"
#include "ingest/sources/synthetic_corpus.h"
#include "tests/support/daemons.h"
#include "tests/support/live_search.h"
#include "tests/support/redis_server.h"
#include "tests/support/ws_client.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <fstream>
#include <map>
#include <sstream>

using namespace birdwatch;
using namespace birdwatch::test;
using namespace std::chrono_literals;

namespace {

constexpr std::int64_t start_ms = 1700000000000;

std::vector<Tweet> synthetic(std::uint64_t seed, std::size_t count) {
    SyntheticCorpus corpus(seed, start_ms, 1);
    TweetParser parser;
    std::vector<Tweet> tweets;
    while (tweets.size() < count) parser.parse(corpus.next(), tweets);
    return tweets;
}

std::string tweet_object_of(const std::string& payload) {
    const auto at = payload.find(",\"tweet\":");
    return at == std::string::npos ? std::string() : payload.substr(at + 9, payload.size() - at - 10);
}

// A real redis-server and two fanout replicas on free ports.
struct TwoFanouts {
    TempDir dir;
    RedisServer redis{dir};
    std::array<unsigned short, 2> ports{free_port(), free_port()};
    ChildProcess fanout_a = start_fanout(dir, "fanout-a", redis.port(), ports[0]);
    ChildProcess fanout_b = start_fanout(dir, "fanout-b", redis.port(), ports[1]);
};

bool wait_for_tweets(const WsClient& client, std::size_t count, std::chrono::milliseconds timeout) {
    return wait_until([&] { return tweet_payloads(client).size() >= count; }, timeout);
}

}  // namespace

namespace {

// N clients over two replicas, each with one of `queries` (the first few with two, so
// that overlapping matches are exercised): 1,000 tweets later, every client holds exactly
// the tweets its queries match, each once, intact, in publish order.
void exact_matches_for_every_client(int client_count, const std::vector<std::string>& queries) {
    TwoFanouts system;
    // References, not a structured binding: clang 14 cannot capture one in a lambda.
    TempDir& dir = system.dir;
    RedisServer& redis = system.redis;
    auto& ports = system.ports;

    WsIo io;
    std::vector<WsClient> clients;
    std::vector<std::vector<std::string>> client_queries;
    for (int i = 0; i < client_count; ++i) {
        clients.emplace_back(io);
        INFO("client " << i << ": " << clients.back().error());
        REQUIRE(clients.back().connect(ports[i % 2]));
        const std::size_t q = static_cast<std::size_t>(i) % queries.size();
        client_queries.push_back({queries[q]});
        if (i < 4) client_queries.back().push_back(queries[(q + 1) % queries.size()]);  // overlapping: still once each
        for (const auto& text : client_queries.back()) subscribe(clients.back(), text);
    }
    REQUIRE(wait_until([&] { return redis.command({"HLEN", "{birdwatch}:queries"}) == std::to_string(queries.size()); }, 5s));

    ChildProcess ingest = start_ingest(dir, "ingest", redis.port(),
                                       {"--source.synthetic.count=1000", "--source.synthetic.rate=0",
                                        "--source.synthetic.seed=42", "--source.synthetic.start_ms=" + std::to_string(start_ms)});
    const auto exit_code = ingest.wait_exit(30s);
    INFO(ingest.log_tail());
    REQUIRE(exit_code == 0);  // a finite source ends the daemon once every belt has drained
    // Everything is published: a sentinel for every query now arrives after all of it.
    std::vector<std::string> all_qids;
    for (const auto& c : client_queries)
        for (const auto& q : c) all_qids.push_back(parse_query(q).query->id);
    std::sort(all_qids.begin(), all_qids.end());
    all_qids.erase(std::unique(all_qids.begin(), all_qids.end()), all_qids.end());
    REQUIRE(redis.command({"PUBLISH", "matches", sentinel_payload(all_qids)}) == "2");  // both replicas

    const std::vector<Tweet> tweets = synthetic(42, 1000);
    std::map<std::vector<std::string>, std::vector<std::string>> expected_for;  // computed once per query set
    for (std::size_t c = 0; c < clients.size(); ++c) {
        INFO("client " << c << " on fanout " << (c % 2 ? "b" : "a") << ", queries " << client_queries[c][0]);
        auto [slot, fresh] = expected_for.try_emplace(client_queries[c]);
        if (fresh) {
            std::vector<ParsedQuery> parsed;
            for (const auto& q : client_queries[c]) parsed.push_back(*parse_query(q).query);
            for (const Tweet& t : tweets) {
                const TweetFeatures f = extract_features(t);
                if (std::any_of(parsed.begin(), parsed.end(), [&](const ParsedQuery& q) { return matches(q.root, f); })) {
                    slot->second.emplace_back();
                    append_tweet_json(slot->second.back(), t);
                }
            }
        }
        const std::vector<std::string>& expected = slot->second;
        REQUIRE(expected.size() >= 20);  // every query matches enough for the check to mean something
        REQUIRE(wait_for_sentinel(clients[c], 20s));  // so anything extra has arrived too
        const std::vector<std::string> got = tweet_payloads(clients[c]);
        REQUIRE(got.size() == expected.size());
        for (std::size_t i = 0; i < got.size(); ++i) {
            INFO("tweet " << i);
            REQUIRE(tweet_object_of(got[i]) == expected[i]);  // intact, in publish order, no duplicates
        }
        CHECK(clients[c].is_open());
    }
    // Every routed payload's latency was observed.
    const std::string metrics = http_get(ports[0], "/metrics").body;
    CHECK(metrics.find("birdwatch_fanout_delivery_latency_seconds_count 0\n") == std::string::npos);
    CHECK(metrics.find("birdwatch_fanout_delivery_latency_seconds_bucket{le=\"+Inf\"}") != std::string::npos);
}

}  // namespace

TEST_CASE("1,000 tweets: 20 clients on two fanouts each receive exactly their matches, intact, once, in order",
          "[fanout][e2e]") {
    exact_matches_for_every_client(20, {"#music OR #news OR #love", "the", "(hoy OR amor) lang:es",
                                        "is:retweet (love OR music OR vida)"});
}

TEST_CASE("routing: 3 queries x 300 clients over 2 replicas, each client exactly its matches, once each, in order",
          "[fanout][e2e]") {
    exact_matches_for_every_client(300, {"#music OR #news OR coffee", "(hoy OR amor) lang:es", "(love OR vida OR liebe) is:reply -the"});
}

TEST_CASE("Redis killed and restarted mid-stream: ingest and fanouts reconnect, re-register, clients keep receiving",
          "[fanout][e2e]") {
    TwoFanouts system;
    // References, not a structured binding: clang 14 cannot capture one in a lambda.
    TempDir& dir = system.dir;
    RedisServer& redis = system.redis;
    auto& ports = system.ports;
    WsIo io;
    std::vector<WsClient> clients;
    for (int i = 0; i < 4; ++i) {
        clients.emplace_back(io);
        REQUIRE(clients.back().connect(ports[i % 2]));
        subscribe(clients.back(), "the OR hoy OR heute");
    }
    ChildProcess ingest = start_ingest(dir, "ingest", redis.port(), {"--source.synthetic.rate=300"});
    for (auto& c : clients) REQUIRE(wait_for_tweets(c, 20, 10s));

    redis.kill();
    REQUIRE(wait_until([&] { return http_get(ports[0], "/readyz").status == 503; }, 5s));
    REQUIRE(wait_until([&] { return http_get(ports[1], "/readyz").status == 503; }, 5s));
    CHECK(http_get(ports[0], "/healthz").status == 200);  // alive, just not ready
    for (auto& c : clients) CHECK(c.is_open());

    const std::int64_t restarted_us = now_epoch_us();
    redis.start();  // same port, empty: no subscriptions, no registry, until the daemons rebuild them
    // Tweets the ingest received after the restart (ingest_us, the same machine's clock).
    const auto received_after_restart = [&](const WsClient& c) {
        std::size_t n = 0;
        for (const auto& p : tweet_payloads(c)) n += nlohmann::json::parse(p)["ingest_us"].get<std::int64_t>() > restarted_us;
        return n;
    };
    REQUIRE(wait_until([&] {
        return http_get(ports[0], "/readyz").status == 200 && http_get(ports[1], "/readyz").status == 200;
    }, 15s));
    for (std::size_t i = 0; i < clients.size(); ++i) {
        INFO("client " << i << ": " << clients[i].error() << "\ningest log:\n" << ingest.log_tail(1500));
        REQUIRE(wait_until([&] { return received_after_restart(clients[i]) >= 50; }, 15s));
        CHECK(clients[i].is_open());
        const auto payloads = tweet_payloads(clients[i]);
        for (std::size_t k = 1; k < payloads.size(); ++k)
            REQUIRE(std::stoull(tweet_from_payload(payloads[k]).id) > std::stoull(tweet_from_payload(payloads[k - 1]).id));
    }
    CHECK(redis.command({"HLEN", "{birdwatch}:queries"}) == "1");  // re-registered by the fanouts
    CHECK(http_get(ports[0], "/metrics").body.find("birdwatch_redis_reconnects_total 1") != std::string::npos);
    CHECK(ingest.running());
}

TEST_CASE("a query registered through one fanout reaches the ingest, its matches reach that client only, "
          "and it expires from registry and ingest when that fanout dies",
          "[fanout][percolation][registry]") {
    TwoFanouts system;
    // References, not a structured binding: clang 14 cannot capture one in a lambda.
    TempDir& dir = system.dir;
    RedisServer& redis = system.redis;
    auto& ports = system.ports;
    ChildProcess& fanout_a = system.fanout_a;
    ChildProcess watcher({find_program("redis-cli"), "-p", std::to_string(redis.port()), "subscribe", "matches"},
                         dir.file("matches.log"));
    const unsigned short ingest_http = free_port();
    ChildProcess ingest = start_ingest(dir, "ingest", redis.port(),
                                       {"--source.synthetic.rate=300", "--http.port=" + std::to_string(ingest_http)});

    WsIo io;
    WsClient a(io), b(io), idle(io);
    REQUIRE(a.connect(ports[0]));
    REQUIRE(b.connect(ports[1]));
    REQUIRE(idle.connect(ports[1]));
    const std::string qa = subscribe(a, "the");
    const std::string qb = subscribe(b, "hoy OR heute");
    REQUIRE(wait_for_tweets(a, 30, 10s));
    REQUIRE(wait_for_tweets(b, 30, 10s));
    for (const auto& p : tweet_payloads(a)) {
        INFO(p);
        REQUIRE(query_matches("the", tweet_from_payload(p)));
        const auto qids = qids_of(p);
        REQUIRE(std::find(qids.begin(), qids.end(), qa) != qids.end());
    }
    for (const auto& p : tweet_payloads(b)) {
        INFO(p);
        REQUIRE(query_matches("hoy OR heute", tweet_from_payload(p)));
        REQUIRE(qids_of(p) == std::vector<std::string>{qb});  // "the" never co-occurs: not Spanish or German
    }
    CHECK(tweet_payloads(idle).empty());

    fanout_a.kill();  // SIGKILL: no goodbye, its lease must lapse on its own
    REQUIRE(wait_until([&] { return redis.command({"HEXISTS", "{birdwatch}:queries", qa}) == "0"; }, 10s));
    CHECK(redis.command({"HEXISTS", "{birdwatch}:queries", qb}) == "1");  // the live replica keeps its own
    // Once the ingest's percolator has dropped qa, no payload it numbers from then on may carry
    // it. Payloads are numbered (seq) as the pipeline makes them, one per matched tweet, delete
    // and live marker, so its counters read after the drop bound the last number made before.
    REQUIRE(wait_until([&] { return metric(ingest_http, "birdwatch_ingest_live_queries") == 1; }, 10s));
    const std::uint64_t made_before = metric(ingest_http, "birdwatch_ingest_tweets_matched_total") +
                                      metric(ingest_http, "birdwatch_ingest_deletions_total") +
                                      metric(ingest_http, "birdwatch_ingest_live_markers_total");
    const std::size_t b_mark = tweet_payloads(b).size();
    REQUIRE(wait_for_tweets(b, b_mark + 30, 10s));
    std::size_t later = 0, later_with_qb = 0;
    std::istringstream log(watcher.log_tail(1 << 30));
    for (std::string line; std::getline(log, line);) {
        if (!line.starts_with("{\"v\":1,\"type\":\"tweet\"")) continue;
        const auto payload = nlohmann::json::parse(line);
        if (payload["seq"].get<std::uint64_t>() <= made_before) continue;
        ++later;
        const auto qids = payload["qids"].get<std::vector<std::string>>();
        INFO(line);
        CHECK(std::find(qids.begin(), qids.end(), qa) == qids.end());
        later_with_qb += std::find(qids.begin(), qids.end(), qb) != qids.end();
    }
    CHECK(later >= 30);
    CHECK(later_with_qb >= 30);
}

TEST_CASE("client protocol: subscribe, unsubscribe, and an error reply (not a disconnect) for every bad message",
          "[fanout]") {
    TempDir dir;
    RedisServer redis(dir);
    const unsigned short port = free_port();
    ChildProcess fanout = start_fanout(dir, "fanout", redis.port(), port, {"--websocket.max_subscriptions=2"});
    WsIo io;
    WsClient client(io);
    REQUIRE(client.connect(port));
    auto ask = [&](const std::string& text) {
        const std::size_t before = client.message_count();
        client.send(text);
        REQUIRE(client.wait_for_messages(before + 1, 5s));
        return nlohmann::json::parse(client.messages()[before]);
    };
    auto reply = ask(R"({"type":"subscribe","query":"Dogs  cats"})");
    CHECK(reply["type"] == "subscribed");
    CHECK(reply["query"] == "cats dogs");
    CHECK(reply["qid"] == parse_query("cats dogs").query->id);
    const std::string qid = reply["qid"];
    CHECK(wait_until([&] { return redis.command({"HGET", "{birdwatch}:queries", qid}) == "cats dogs"; }, 5s));

    reply = ask(R"({"type":"subscribe","query":"cats OR"})");
    CHECK(reply == nlohmann::json{{"v", 1}, {"type", "error"}, {"code", "bad_query"}, {"field", "query"},
                                  {"message", "'OR' at position 5 has nothing on its right"}, {"position", 5}});
    CHECK(ask("not json")["code"] == "bad_message");
    CHECK(ask("[1,2]")["code"] == "bad_message");
    CHECK(ask(R"({"query":"x"})")["code"] == "bad_message");
    CHECK(ask(R"({"type":"subscribe"})")["code"] == "bad_message");
    CHECK(ask(R"({"type":"subscribe","query":42})")["code"] == "bad_message");
    CHECK(ask(R"({"type":"dance"})")["message"] ==
          "unknown message type \"dance\" (expected subscribe, unsubscribe, history, resume or get)");
    CHECK(ask(R"({"type":"history","query":"cats"})")["code"] == "no_store");  // this replica runs without a store
    CHECK(ask(R"({"type":"unsubscribe","qid":")" + parse_query("nope").query->id + R"("})")["code"] == "not_subscribed");
    CHECK(ask(R"({"type":"subscribe","query":"birds"})")["type"] == "subscribed");
    CHECK(ask(R"({"type":"subscribe","query":"fish"})")["code"] == "too_many_subscriptions");
    reply = ask(R"({"type":"unsubscribe","qid":")" + qid + R"("})");
    CHECK(reply["type"] == "unsubscribed");
    CHECK(reply["qid"] == qid);
    CHECK(ask(R"({"type":"subscribe","query":"fish"})")["type"] == "subscribed");
    CHECK(client.is_open());
    CHECK(http_get(port, "/metrics").body.find("birdwatch_fanout_client_errors_total 10") != std::string::npos);

    WsClient oversized(io);
    REQUIRE(oversized.connect(port));
    oversized.send(std::string(16 * 1024 + 1, 'x'));
    REQUIRE(wait_until([&] { return !oversized.is_open(); }, 5s));
    CHECK(oversized.close_code() == 1009);
    CHECK(client.is_open());  // the other client is unaffected
    CHECK(http_get(port, "/nope").status == 404);
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
