// Scale-out (docs/protocol.md "Channels"): a real Redis Cluster of redis-server
// processes, the ingest and two fanouts in cluster mode, where each replica receives
// only its own clients' queries on its own sharded channel; a master killed
// mid-stream; and, in single mode, clients that live through a Redis restart. In every
// case each client ends with every stored matching tweet, once, using only the client
// logic docs/protocol.md asks for (gap -> resume).

#include "tests/support/daemons.h"
#include "tests/support/follower.h"
#include "tests/support/live_search.h"
#include "tests/support/redis_cluster.h"
#include "tests/support/redis_server.h"

#include "common/redis_cluster.h"

#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <thread>

using namespace birdwatch;
using namespace birdwatch::test;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> cluster_flags(const RedisCluster& cluster) {
    return {"--redis.mode=cluster", "--redis.cluster_nodes=" + cluster.seeds()};
}

template <typename... Lists>
std::vector<std::string> joined(std::vector<std::string> first, const Lists&... rest) {
    (first.insert(first.end(), rest.begin(), rest.end()), ...);
    return first;
}

// SIGTERM: the ingest drains and exits 0; then the last publications arrive, and every
// follower's history and resumes come to their last page (store reads can queue up:
// a hundred clients resuming at once under a sanitizer take seconds).
void stop_and_settle(ChildProcess& ingest, std::vector<std::unique_ptr<Follower>>& followers) {
    ingest.signal(SIGTERM);
    INFO(ingest.log_tail());
    REQUIRE(ingest.wait_exit(30s) == 0);
    pump_until(followers, [] { return false; }, 1s);
    CHECK(pump_until(followers, [&] { return all_settled(followers); }, 60s * sanitizer_slowdown));
    pump_until(followers, [] { return false; }, 500ms);
}

struct ClusterStack {
    TempDir dir;
    RedisCluster cluster{dir};
    std::string db = dir.file("ingest.db");
    ChildProcess ingest;
    unsigned short ports[2] = {free_port(), free_port()};
    ChildProcess fanouts[2];

    explicit ClusterStack(const std::vector<std::string>& fanout_extra = {}) {
        ingest = start_ingest(dir, "ingest", 0,
                              joined(cluster_flags(cluster), std::vector<std::string>{"--source.synthetic.rate=300",
                                                                                      "--source.synthetic.seed=5"}));
        REQUIRE(wait_until([&] { return std::ifstream(db).good(); }, 10s));
        for (int i = 0; i < 2; ++i)
            fanouts[i] = start_fanout(
                dir, "fanout-" + std::to_string(i), 0, ports[i],
                joined(cluster_flags(cluster), fanout_extra,
                       std::vector<std::string>{"--redis.replica_id=replica-" + std::to_string(i),
                                                "--store.kind=sqlite", "--store.sqlite.path=" + db,
                                                "--websocket.messages_per_second=100000",
                                                "--websocket.message_burst=100000"}));
    }
    std::string channel(int replica) const { return "matches:replica-" + std::to_string(replica); }
    // `count` followers, alternately on each replica, client c on queries[c % queries.size()].
    std::vector<std::unique_ptr<Follower>> follow(WsIo& io, int count, const std::vector<std::string>& queries) {
        std::vector<std::unique_ptr<Follower>> followers;
        for (int c = 0; c < count; ++c)
            followers.push_back(std::make_unique<Follower>(io, ports[c % 2], queries[c % queries.size()]));
        return followers;
    }
    void stop_ingest(std::vector<std::unique_ptr<Follower>>& followers) { stop_and_settle(ingest, followers); }
};

// One Redis, the ingest on the synthetic source with SQLite, one fanout reading it.
struct SingleStack {
    TempDir dir;
    RedisServer redis{dir};
    std::string db = dir.file("ingest.db");
    ChildProcess ingest;
    unsigned short port = free_port();
    ChildProcess fanout;

    SingleStack(int rate, int seed, const std::vector<std::string>& fanout_extra) {
        ingest = start_ingest(dir, "ingest", redis.port(), {"--source.synthetic.rate=" + std::to_string(rate),
                                                            "--source.synthetic.seed=" + std::to_string(seed)});
        REQUIRE(wait_until([&] { return std::ifstream(db).good(); }, 10s));
        fanout = start_fanout(dir, "fanout", redis.port(), port,
                              joined({"--store.kind=sqlite", "--store.sqlite.path=" + db}, fanout_extra));
    }
    void stop_ingest(std::vector<std::unique_ptr<Follower>>& followers) { stop_and_settle(ingest, followers); }
};

}  // namespace

TEST_CASE("Redis Cluster: 300 clients of 100 queries on two replicas each get exactly their matches, and each "
          "replica receives only payloads of its own clients' queries", "[scale-out]") {
    ClusterStack stack;
    const std::vector<std::string> queries = synthetic_words(5, 100, 60);  // selective: ranks 60-159
    WsIo io;
    std::vector<std::unique_ptr<Follower>> followers;
    std::set<std::string> own_qids[2];
    for (int c = 0; c < 300; ++c) {  // queries 0-49 on replica 0, 50-99 on replica 1, three clients each
        const int replica = c < 150 ? 0 : 1;
        const std::string& query = queries[c % 50 + 50 * replica];
        followers.push_back(std::make_unique<Follower>(io, stack.ports[replica], query));
        own_qids[replica].insert(followers.back()->qid);
        if (c % 10 == 0) std::this_thread::sleep_for(20ms);
    }
    REQUIRE(pump_until(followers, [&] {
        return std::all_of(followers.begin(), followers.end(), [](const auto& f) { return f->history_done; });
    }, 60s * sanitizer_slowdown));
    REQUIRE(pump_until(followers, [&] { return live_total(followers) >= 2000; }, 60s * sanitizer_slowdown));

    for (int replica = 0; replica < 2; ++replica) {
        INFO("replica " << replica);
        const std::string log = stack.fanouts[replica].log_tail(100000);
        CHECK(log.find("channel=" + stack.channel(replica) + " ") != std::string::npos);  // its own, sharded
        CHECK(log.find("sharded=true") != std::string::npos);
        const auto received = metric(stack.ports[replica], "birdwatch_fanout_payloads_total");
        CHECK(received > 100);
        CHECK(metric(stack.ports[replica], "birdwatch_fanout_payloads_unwanted_total") == 0);
        CHECK(metric(stack.ports[replica], "birdwatch_fanout_queries") == 50);
        for (int c = 150 * replica; c < 150 * (replica + 1); ++c)  // each copy names this replica's queries only
            for (const auto& qid : followers[c]->qids_seen) CHECK(own_qids[replica].count(qid) == 1);
    }
    stack.stop_ingest(followers);
    check_complete(followers, stack.db);
}

TEST_CASE("Redis Cluster: a master killed mid-stream fails over, its subscriptions move, and every client ends with "
          "every stored matching tweet, none twice", "[scale-out]") {
    // Leases outlive the failover, so no query lapses while its slot has no master.
    ClusterStack stack({"--registry.lease_ttl_ms=30000", "--registry.refresh_ms=1000"});
    const std::vector<std::string> queries = synthetic_words(5, 20, 40);
    WsIo io;
    auto followers = stack.follow(io, 60, queries);
    REQUIRE(pump_until(followers, [&] { return live_total(followers) >= 300; }, 30s * sanitizer_slowdown));

    const unsigned short victim = stack.cluster.master_of(stack.channel(0));
    REQUIRE(victim != 0);
    stack.cluster.kill(victim);
    REQUIRE(stack.cluster.healthy(30s));  // a replica took over the killed master's slots
    // The replica whose channel lived there subscribes on the new master (its retries back
    // off up to 5 s) and announces the gap with the next tweet it receives.
    REQUIRE(pump_until(followers, [&] {
        return metric(stack.ports[0], "birdwatch_fanout_gaps_total{reason=\"resubscribed\"}") >= 1;
    }, 60s * sanitizer_slowdown));
    CHECK(metric(stack.ports[0], "birdwatch_redis_reconnects_total") >= 1);
    const std::size_t before = live_total(followers);
    REQUIRE(pump_until(followers, [&] { return live_total(followers) >= before + 300; }, 60s * sanitizer_slowdown));
    for (auto& fanout : stack.fanouts) CHECK(fanout.running());
    stack.stop_ingest(followers);
    check_complete(followers, stack.db);
}

TEST_CASE("Redis Cluster: the slot of a replica's channel moves to another master mid-stream: the ingest follows "
          "MOVED, the replica follows sunsubscribe, and every client ends with every stored matching tweet once",
          "[scale-out]") {
    ClusterStack stack;
    const std::vector<std::string> queries = synthetic_words(5, 20, 40);
    WsIo io;
    auto followers = stack.follow(io, 40, queries);
    REQUIRE(pump_until(followers, [&] { return live_total(followers) >= 200; }, 30s * sanitizer_slowdown));

    // Move the channel's slot as redis-cli --cluster reshard does, one slot by hand: the
    // channel holds no keys, so nothing needs MIGRATE; every master learns the new owner.
    const std::string slot = std::to_string(cluster::key_slot(stack.channel(0)));
    const unsigned short from = stack.cluster.master_of(stack.channel(0));
    unsigned short to = 0;
    for (const unsigned short port : stack.cluster.ports())
        if (port != from && redis_command(port, {"ROLE"}).rfind("master", 0) == 0) to = port;
    REQUIRE(to != 0);
    const std::string from_id = redis_command(from, {"CLUSTER", "MYID"}), to_id = redis_command(to, {"CLUSTER", "MYID"});
    CHECK(redis_command(to, {"CLUSTER", "SETSLOT", slot, "IMPORTING", from_id}) == "OK");
    CHECK(redis_command(from, {"CLUSTER", "SETSLOT", slot, "MIGRATING", to_id}) == "OK");
    for (const unsigned short port : stack.cluster.ports())
        if (redis_command(port, {"ROLE"}).rfind("master", 0) == 0)
            CHECK(redis_command(port, {"CLUSTER", "SETSLOT", slot, "NODE", to_id}) == "OK");
    REQUIRE(wait_until([&] { return stack.cluster.master_of(stack.channel(0)) == to; }, 10s));

    REQUIRE(pump_until(followers, [&] {
        return metric(stack.ports[0], "birdwatch_fanout_gaps_total{reason=\"resubscribed\"}") >= 1;
    }, 60s * sanitizer_slowdown));
    const std::size_t before = live_total(followers);
    REQUIRE(pump_until(followers, [&] { return live_total(followers) >= before + 200; }, 60s * sanitizer_slowdown));
    CHECK(stack.fanouts[0].log_tail(100000).find("port=" + std::to_string(to) + " sharded=true") != std::string::npos);
    stack.stop_ingest(followers);
    check_complete(followers, stack.db);
}

TEST_CASE("Redis Cluster: a replayed stream with repeats and a deletion reaches each replica once per tweet, and "
          "the deletion reaches every replica's clients", "[scale-out]") {
    TempDir dir;
    RedisCluster cluster(dir);
    const std::string db = dir.file("tweets.db");
    WsIo io;
    std::vector<ChildProcess> fanouts;
    std::vector<std::unique_ptr<WsClient>> clients;
    for (int r = 0; r < 2; ++r) {
        const unsigned short port = free_port();
        fanouts.push_back(start_fanout(dir, "fanout-" + std::to_string(r), 0, port,
                                       joined(cluster_flags(cluster),
                                              std::vector<std::string>{"--redis.replica_id=replica-" + std::to_string(r),
                                                                       "--store.kind=sqlite", "--store.sqlite.path=" + db})));
        clients.push_back(std::make_unique<WsClient>(io));
        REQUIRE(clients.back()->connect(port));
        subscribe(*clients.back(), r == 0 ? "birdwatch" : "birdwatch OR nothingmatchesthis");
    }
    const unsigned short registry = cluster.master_of("{birdwatch}:holders");
    REQUIRE(wait_until([&] { return redis_command(registry, {"ZCARD", "{birdwatch}:holders"}) == "2"; }, 10s));
    {
        std::ofstream replay(dir.file("stream.jsonl"));
        replay << v1_tweet("1001", "birdwatch one") << "\n"
               << v1_tweet("1002", "birdwatch two") << "\n"
               << v1_tweet("1001", "birdwatch one") << "\n"  // a reconnect's repeat
               << v1_delete("1002") << "\n"
               << v1_tweet("1003", "birdwatch three") << "\n";
    }
    ChildProcess ingest = start_ingest(dir, "ingest", 0,
                                       joined(cluster_flags(cluster),
                                              std::vector<std::string>{"--source.kind=replay",
                                                                       "--source.replay.path=" + dir.file("stream.jsonl"),
                                                                       "--store.sqlite.path=" + db}));
    for (const auto& client : clients) {
        REQUIRE(wait_until([&] { return tweet_payloads(*client).size() >= 3; }, 10s));
        REQUIRE(wait_until([&] {
            for (const auto& m : client->messages())
                if (m.find(R"("type":"delete","id":"1002")") != std::string::npos) return true;
            return false;
        }, 5s));
    }
    REQUIRE(ingest.wait_exit(30s) == 0);
    // The replay is published whole: a sentinel on each replica's channel arrives after all of it.
    for (int r = 0; r < 2; ++r) {
        const std::string channel = "matches:replica-" + std::to_string(r);
        const std::string query = r == 0 ? "birdwatch" : "birdwatch OR nothingmatchesthis";
        REQUIRE(redis_command(cluster.master_of(channel),
                              {"SPUBLISH", channel, sentinel_payload({parse_query(query).query->id})}) == "1");
        REQUIRE(wait_for_sentinel(*clients[r], 10s));
    }
    for (int r = 0; r < 2; ++r) {
        INFO("replica " << r);
        std::vector<std::string> ids;
        for (const auto& payload : tweet_payloads(*clients[r])) {
            ids.push_back(nlohmann::json::parse(payload)["tweet"]["id"]);
            CHECK(qids_of(payload).size() == 1);  // only this replica's query is named
        }
        CHECK(ids == std::vector<std::string>{"1001", "1002", "1003"});
    }
    // A replica whose last client leaves a query ends its hold at once: the ingest stops
    // routing that query there (it is not left to lapse with the lease).
    clients[1]->send(nlohmann::json{{"type", "unsubscribe"},
                                    {"qid", parse_query("birdwatch OR nothingmatchesthis").query->id}}.dump());
    CHECK(wait_until([&] { return redis_command(registry, {"ZCARD", "{birdwatch}:holders"}) == "1"; }, 5s));
}

TEST_CASE("single Redis: 100 clients that never resume on their own live through Redis SIGKILLed and restarted "
          "after 5 s and end with every stored matching tweet, none twice", "[scale-out]") {
    // Leases outlive the outage, as a production lease (30 s) does.
    // Under ThreadSanitizer this test's own JSON reading cannot keep up with 100 clients:
    // a third of the clients and of the rate there.
    SingleStack stack(300 / sanitizer_slowdown, 7, {"--registry.lease_ttl_ms=30000", "--registry.refresh_ms=1000"});
    const unsigned short port = stack.port;
    const std::vector<std::string> queries = synthetic_words(7, 20, 10);
    WsIo io;
    std::vector<std::unique_ptr<Follower>> followers;
    for (int c = 0; c < 100 / sanitizer_slowdown; ++c)
        followers.push_back(std::make_unique<Follower>(io, port, queries[c % 20]));
    const std::size_t some = 500 / sanitizer_slowdown;
    REQUIRE(pump_until(followers, [&] { return live_total(followers) >= some; }, 30s * sanitizer_slowdown));
    stack.redis.kill();
    std::this_thread::sleep_for(5s);  // the clients stay connected (their socket thread reads on)
    stack.redis.start();
    // The fanout resubscribes (its retries back off up to 5 s) and announces the gap with
    // the next tweet; only then do new tweets count (the clients' backlog is read first).
    REQUIRE(pump_until(followers, [&] {
        return metric(port, "birdwatch_fanout_gaps_total{reason=\"resubscribed\"}") >= 1;
    }, 60s * sanitizer_slowdown));
    const std::size_t before = live_total(followers);
    REQUIRE(pump_until(followers, [&] { return live_total(followers) >= before + some; }, 60s * sanitizer_slowdown));
    stack.stop_ingest(followers);
    std::size_t gaps = 0;
    for (const auto& f : followers) gaps += f->gaps;
    CHECK(gaps >= followers.size());  // every client was told, and resumed
    CHECK(metric(port, "birdwatch_fanout_backfill_requests_total") >= followers.size());
    CHECK(metric(port, "birdwatch_fanout_resumed_tweets_total") > 0);
    check_complete(followers, stack.db);
}

TEST_CASE("a slow client whose queued tweets were dropped is told the gap once it catches up, and ends with every "
          "stored matching tweet, none twice", "[scale-out]") {
    SingleStack stack(1500, 9, {"--websocket.max_queue_bytes=65536", "--websocket.slow_close_ms=60000"});
    const unsigned short port = stack.port;
    const std::vector<std::string> words = synthetic_words(9, 6);  // the commonest: a busy query
    WsIo io;
    std::vector<std::unique_ptr<Follower>> followers;
    followers.push_back(std::make_unique<Follower>(
        io, port, words[0] + " OR " + words[1] + " OR " + words[2] + " OR " + words[3] + " OR " + words[4]));
    REQUIRE(pump_until(followers, [&] { return followers[0]->live >= 200; }, 30s * sanitizer_slowdown));
    followers[0]->ws->pause_reading(true);
    REQUIRE(wait_until([&] { return metric(port, "birdwatch_fanout_frames_dropped_total") >= 1000; },
                       60s * sanitizer_slowdown));
    followers[0]->ws->pause_reading(false);
    REQUIRE(pump_until(followers, [&] { return followers[0]->gaps >= 1; }, 30s * sanitizer_slowdown));
    CHECK(metric(port, "birdwatch_fanout_gaps_total{reason=\"slow_client\"}") >= 1);
    CHECK(metric(port, "birdwatch_fanout_slow_client_closes_total") == 0);
    stack.stop_ingest(followers);
    check_complete(followers, stack.db);
}
