// Redis Cluster addressing (slots, redirections, the slot map), the registry's hold
// events, cluster-mode config, and the ingest's per-replica routing.

#include "common/config.h"
#include "common/redis_cluster.h"
#include "fanout/fanout_config.h"
#include "ingest/ingest_config.h"
#include "ingest/pipeline.h"
#include "ingest/query_follower.h"
#include "ingest/router.h"

#include <hiredis/hiredis.h>

#include <catch2/catch.hpp>

using namespace birdwatch;
using namespace std::chrono_literals;

namespace {

// A reply as hiredis reads it from RESP bytes.
RedisReplyPtr read_resp(const std::string& bytes) {
    redisReader* reader = redisReaderCreate();
    redisReaderFeed(reader, bytes.data(), bytes.size());
    void* reply = nullptr;
    REQUIRE(redisReaderGetReply(reader, &reply) == REDIS_OK);
    redisReaderFree(reader);
    return RedisReplyPtr(static_cast<redisReply*>(reply));
}

EnvLookup no_env() {
    return [](const char*) -> const char* { return nullptr; };
}

}  // namespace

TEST_CASE("key slots agree with Redis's CLUSTER KEYSLOT, hash tags included", "[cluster]") {
    CHECK(cluster::crc16("123456789") == 0x31C3);  // the specification's check value
    // Each expected slot is what redis-server 7.0 answered to CLUSTER KEYSLOT.
    const std::vector<std::pair<std::string, int>> answered = {
        {"foo", 12182}, {"bar", 5061}, {"hello", 866}, {"{user1000}.following", 3443},
        {"{user1000}.followers", 3443}, {"foo{}{bar}", 8363}, {"foo{{bar}}zap", 4015}, {"foo{bar}{zap}", 5061},
        {"{birdwatch}:queries", 13795}, {"matches:replica-0", 12607}, {"", 0}, {"ü日本", 2558}};
    for (const auto& [key, slot] : answered) {
        INFO(key);
        CHECK(cluster::key_slot(key) == slot);
    }
}

TEST_CASE("MOVED and ASK redirections are read, and anything else is not one", "[cluster]") {
    const auto moved = cluster::parse_redirect("MOVED 3999 127.0.0.1:6381");
    REQUIRE(moved);
    CHECK_FALSE(moved->ask);
    CHECK(moved->slot == 3999);
    CHECK(moved->to == cluster::NodeAddress{"127.0.0.1", 6381});
    const auto ask = cluster::parse_redirect("ASK 1 ::1:7000");
    REQUIRE(ask);
    CHECK(ask->ask);
    CHECK(ask->to == cluster::NodeAddress{"::1", 7000});
    for (const char* other : {"ERR unknown command", "MOVED", "MOVED 16384 h:1", "MOVED 1 host", "MOVED x h:1",
                              "ASK 1 h:0", "MOVED 1 h:70000", "CLUSTERDOWN The cluster is down"})
        CHECK_FALSE(cluster::parse_redirect(other));
    CHECK(cluster::parse_address("10.0.0.1:7000@17000") == cluster::NodeAddress{"10.0.0.1", 7000});
}

TEST_CASE("the slot map from CLUSTER SLOTS names each slot's master, and malformed replies give none", "[cluster]") {
    const auto reply = read_resp(
        "*2\r\n"
        "*4\r\n:5461\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:7001\r\n$2\r\nid\r\n*3\r\n$9\r\n127.0.0.1\r\n:7004\r\n$2\r\nid\r\n"
        "*3\r\n:0\r\n:5460\r\n*2\r\n$0\r\n\r\n:7000\r\n");
    auto ranges = cluster::parse_slots(reply.get());
    REQUIRE(ranges.size() == 2);
    CHECK(ranges[1].master.host.empty());  // "the node you asked": the client fills it in
    ranges[1].master.host = "127.0.0.1";
    cluster::SlotMap map;
    map.assign(ranges);
    CHECK(*map.master_of(0) == cluster::NodeAddress{"127.0.0.1", 7000});
    CHECK(*map.master_of(5460) == cluster::NodeAddress{"127.0.0.1", 7000});
    CHECK(*map.master_of(5461) == cluster::NodeAddress{"127.0.0.1", 7001});
    CHECK(*map.master_of(16383) == cluster::NodeAddress{"127.0.0.1", 7001});
    CHECK(map.masters().size() == 2);
    map.assign({ranges[0]});
    CHECK(map.master_of(100) == nullptr);  // a slot no master serves
    for (const char* bad : {"-ERR This instance has cluster support disabled\r\n", "*1\r\n*2\r\n:0\r\n:1\r\n",
                            "*1\r\n*3\r\n:5\r\n:1\r\n*2\r\n$1\r\nh\r\n:1\r\n", "*1\r\n*3\r\n:0\r\n:99999\r\n*2\r\n$1\r\nh\r\n:1\r\n",
                            "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n:1\r\n:1\r\n"})
        CHECK(cluster::parse_slots(read_resp(bad).get()).empty());
}

TEST_CASE("registry hold and drop events name a replica, and a bad replica id is not an event", "[cluster]") {
    const auto hold = parse_registry_event(R"({"v":1,"op":"hold","qid":"qa","replica":"web-1:8080:77"})");
    REQUIRE(hold);
    CHECK(hold->kind == QueryUpdate::Kind::hold);
    CHECK(hold->replica == "web-1:8080:77");
    const auto drop = parse_registry_event(R"({"v":1,"op":"drop","qid":"qa","replica":"r"})");
    REQUIRE(drop);
    CHECK(drop->kind == QueryUpdate::Kind::drop);
    const auto mark = parse_registry_event(R"({"v":1,"op":"mark","qid":"qa","replica":"r"})");
    REQUIRE(mark);
    CHECK(mark->replica == "r");
    CHECK_FALSE(parse_registry_event(R"({"v":1,"op":"hold","qid":"qa"})"));
    CHECK_FALSE(parse_registry_event(R"({"v":1,"op":"hold","qid":"qa","replica":"a b"})"));
    CHECK_FALSE(parse_registry_event(R"({"v":1,"op":"hold","qid":"qa","replica":""})"));
    CHECK_FALSE(parse_registry_event(R"({"v":1,"op":"drop","qid":"qa","replica":7})"));
}

TEST_CASE("cluster mode needs seed nodes, and registry keys sharing one slot", "[cluster]") {
    const auto ingest = [](std::vector<std::string> flags) {
        return to_ingest_config(load_config(ingest_config_spec(), flags, no_env()).values);
    };
    const IngestConfig single = ingest({});
    CHECK_FALSE(single.publisher.redis.cluster);
    CHECK_FALSE(single.pipeline.per_replica_channels);
    const IngestConfig clustered = ingest({"--redis.mode=cluster", "--redis.cluster_nodes=10.0.0.1:7000, 10.0.0.2:7001"});
    CHECK(clustered.publisher.redis.cluster);
    CHECK(clustered.pipeline.per_replica_channels);
    CHECK(clustered.follower.redis.seeds ==
          std::vector<cluster::NodeAddress>{{"10.0.0.1", 7000}, {"10.0.0.2", 7001}});
    CHECK_THROWS_WITH(ingest({"--redis.mode=cluster"}),
                      "redis.mode cluster needs redis.cluster_nodes (host:port,host:port,...)");
    CHECK_THROWS_WITH(ingest({"--redis.mode=sentinel"}), "redis.mode must be single or cluster, got 'sentinel'");
    CHECK_THROWS_WITH(ingest({"--redis.mode=cluster", "--redis.cluster_nodes=nohost"}),
                      "redis.cluster_nodes: 'nohost' is not host:port");
    CHECK_THROWS_WITH(ingest({"--redis.mode=cluster", "--redis.cluster_nodes=h:1", "--registry.leases_key=leases"}),
                      Catch::Matchers::StartsWith("on a Redis Cluster the registry keys must share a hash slot"));
    CHECK_NOTHROW(ingest({"--registry.leases_key=leases"}));  // one Redis: any names

    const FanoutConfig fanout = to_fanout_config(load_config(fanout_config_spec(), {"--http.port=8080"}, no_env()).values);
    CHECK(registry::valid_replica_id(fanout.replica_id));
    CHECK(fanout.registrar.replica_id == fanout.replica_id);
    CHECK_THROWS_WITH(to_fanout_config(load_config(fanout_config_spec(), {"--redis.replica_id=a b"}, no_env()).values),
                      "redis.replica_id must be 1-100 letters, digits or . _ : -, got 'a b'");
}

TEST_CASE("router: single mode puts everything on one channel, and per replica each copy carries only its replica's "
          "queries", "[cluster]") {
    MetricsRegistry metrics;
    using Routed = std::vector<std::pair<std::string, std::vector<std::string>>>;
    const auto route = [](Router& router, const std::vector<std::string>& qids) {
        Routed out;
        router.route(qids, [&](Router::Channel& channel, const std::vector<std::string>& carried) {
            ++channel.seq;
            out.emplace_back(*channel.name, carried);
        });
        std::sort(out.begin(), out.end());
        return out;
    };

    Router single({"matches", false, 4, 60s}, metrics);
    CHECK(single.hold("qa", "r1") == nullptr);
    CHECK(route(single, {"qa", "qb"}) == Routed{{"matches", {"qa", "qb"}}});

    MetricsRegistry router_metrics;
    Router router({"matches", true, 2, 60s}, router_metrics);
    REQUIRE(router.hold("qa", "r1") != nullptr);
    CHECK(router.hold("qa", "r1") == nullptr);  // not new
    REQUIRE(router.hold("qb", "r2") != nullptr);
    REQUIRE(router.hold("qc", "r1") != nullptr);
    REQUIRE(router.hold("qc", "r2") != nullptr);
    CHECK(route(router, {"qa", "qb", "qc"}) ==
          Routed{{"matches:r1", {"qa", "qc"}}, {"matches:r2", {"qb", "qc"}}});
    CHECK(route(router, {"qa"}) == Routed{{"matches:r1", {"qa"}}});  // once per replica it interests
    CHECK(route(router, {"qz"}).empty());
    CHECK(router.holder("qa", "r1")->seq == 2);  // numbered per channel
    CHECK(router.holder("qb", "r2")->seq == 1);
    CHECK(router.hold("qa", "r3") == nullptr);  // max_replicas: both channels hold queries
    CHECK(router_metrics.value("birdwatch_ingest_holds_refused_total") == 1);

    router.drop("qc", "r2");
    CHECK(route(router, {"qc"}) == Routed{{"matches:r1", {"qc"}}});
    router.forget_query("qa");
    CHECK(route(router, {"qa", "qc"}) == Routed{{"matches:r1", {"qc"}}});

    // A snapshot that lacks a hold keeps it for the grace period; new holds are returned.
    const auto t0 = Router::Clock::now();
    const auto fresh = router.snapshot({{"qb", "r2"}, {"qd", "r2"}}, t0);
    REQUIRE(fresh.size() == 1);
    CHECK(fresh[0].first == "qd");
    router.expire(t0 + 59s);
    CHECK(route(router, {"qc"}) == Routed{{"matches:r1", {"qc"}}});
    router.expire(t0 + 61s);
    CHECK(route(router, {"qc", "qd"}) == Routed{{"matches:r2", {"qd"}}});
    std::vector<std::string> deletes_to;
    router.each_channel([&](Router::Channel& channel) { deletes_to.push_back(*channel.name); });
    CHECK(deletes_to == std::vector<std::string>{"matches:r2"});  // r1 holds nothing now
}

TEST_CASE("pipeline, per replica: a hold counts only for a query the ingest matches, and its live marker and the tweets "
          "then go to that replica's channel alone", "[cluster][threads]") {
    MetricsRegistry metrics;
    BoundedChannel<StreamLine> lines(100);
    BoundedChannel<QueryUpdate> queries(100);
    BoundedChannel<AcceptedTweet> out(100);
    PipelineOptions options;
    options.per_replica_channels = true;
    Pipeline pipeline(options, lines, queries, out, metrics);
    pipeline.start();
    const auto channels_of_next = [&] {
        std::vector<std::string> channels;
        if (auto accepted = out.pop_for(5s))
            for (const auto& p : accepted->publications) channels.push_back(*p.channel + " " + p.payload.substr(0, 21));
        return channels;
    };
    queries.push({QueryUpdate::Kind::hold, "qunknown", {}, "r1", {}, {}});  // no such query: ignored
    queries.push({QueryUpdate::Kind::add, "qcats", "cats", {}, {}, {}});
    queries.push({QueryUpdate::Kind::hold, "qcats", {}, "r2", {}, {}});
    CHECK(channels_of_next() == std::vector<std::string>{R"(matches:r2 {"v":1,"type":"live",)"});
    lines.push({R"({"id_str":"5","text":"cats","user":{"id_str":"1","screen_name":"a"}})", 0});
    CHECK(channels_of_next() == std::vector<std::string>{R"(matches:r2 {"v":1,"type":"tweet")"});
    lines.close();
    pipeline.join();
    CHECK(metrics.value("birdwatch_ingest_replica_channels") == 1);  // the stray hold made no channel
}
