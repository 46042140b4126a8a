// Scale-out, measured: what Redis sends and what each fanout replica takes in, with
// 1, 2, 4 and 8 replicas whose clients hold distinct selective queries, in single mode
// (one Redis, every payload to every replica) and cluster mode (a 3-master Redis
// Cluster, each replica its own sharded channel), side by side in one run.
//   birdwatch-bench-scale-out [--replicas 1,2,4,8] [--seconds 10] [--rate 1000] [--queries 10]
// A Catch host (it starts real daemons with the test support); prints a Markdown table.

#include "tests/support/daemons.h"
#include "tests/support/follower.h"
#include "tests/support/redis_cluster.h"
#include "tests/support/redis_server.h"

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <thread>

using namespace birdwatch;
using namespace birdwatch::test;
using namespace std::chrono_literals;

namespace {

std::string option(const char* name, const char* fallback) {
    const char* value = std::getenv(name);
    return value && *value ? value : fallback;
}

struct Row {
    int replicas = 0;
    std::string mode;
    double matched_per_s = 0, copies_per_tweet = 0, redis_bytes_per_tweet = 0, intake_per_replica = 0,
           unwanted_share = 0, payload_bytes = 0;
};

Row measure(int replicas, bool cluster_mode, double seconds, int rate, int queries_per_replica,
            const std::vector<std::string>& words) {
    TempDir dir;
    std::unique_ptr<RedisServer> single;
    std::unique_ptr<RedisCluster> cluster;
    std::vector<std::string> redis_flags;
    unsigned short redis_port = 0;
    if (cluster_mode) {
        cluster = std::make_unique<RedisCluster>(dir, 3, 0);
        redis_flags = {"--redis.mode=cluster", "--redis.cluster_nodes=" + cluster->seeds()};
    } else {
        single = std::make_unique<RedisServer>(dir);
        redis_port = single->port();
    }
    const auto bytes_sent = [&]() -> std::uint64_t {
        if (cluster) return cluster->bytes_sent();
        const std::string info = single->command({"INFO", "stats"});
        const auto at = info.find("total_net_output_bytes:");
        return at == std::string::npos ? 0 : std::stoull(info.substr(at + 23));
    };
    const unsigned short ingest_http = free_port();
    std::vector<std::string> ingest_flags = redis_flags;
    ingest_flags.insert(ingest_flags.end(), {"--source.synthetic.rate=" + std::to_string(rate), "--store.kind=none",
                                             "--http.port=" + std::to_string(ingest_http), "--log.level=warn"});
    ChildProcess ingest = start_ingest(dir, "ingest", redis_port, ingest_flags);
    REQUIRE(wait_until([&] { return http_get(ingest_http, "/healthz").status == 200; }, 10s));
    std::vector<ChildProcess> fanouts;
    std::vector<unsigned short> ports;
    WsIo io;
    std::vector<std::unique_ptr<Follower>> followers;
    for (int r = 0; r < replicas; ++r) {
        ports.push_back(free_port());
        std::vector<std::string> flags = redis_flags;
        flags.insert(flags.end(), {"--redis.replica_id=replica-" + std::to_string(r), "--log.level=warn",
                                   "--stats.interval_ms=0"});
        fanouts.push_back(start_fanout(dir, "fanout-" + std::to_string(r), redis_port, ports.back(), flags));
        for (int q = 0; q < queries_per_replica; ++q)
            followers.push_back(std::make_unique<Follower>(io, ports.back(), words[r * queries_per_replica + q], false));
    }
    wait_until([&] {  // every query live and routed: each client has its first tweets
        for (auto& f : followers) f->pump();
        return std::all_of(followers.begin(), followers.end(), [](const auto& f) { return f->live > 0; });
    }, 20s);
    const auto sample = [&] {
        std::vector<double> v = {static_cast<double>(bytes_sent()),
                                 static_cast<double>(metric(ingest_http, "birdwatch_ingest_tweets_matched_total")),
                                 static_cast<double>(metric(ingest_http, "birdwatch_ingest_published_total")),
                                 static_cast<double>(metric(ingest_http, "birdwatch_ingest_published_bytes_total"))};
        for (const auto port : ports) {
            v.push_back(static_cast<double>(metric(port, "birdwatch_fanout_payloads_total")));
            v.push_back(static_cast<double>(metric(port, "birdwatch_fanout_payloads_unwanted_total")));
        }
        return v;
    };
    const auto begin = sample();
    const auto started = std::chrono::steady_clock::now();
    wait_until([&] {
        for (auto& f : followers) f->take_messages_only();
        return false;
    }, std::chrono::milliseconds(static_cast<long>(seconds * 1000)));
    const auto end = sample();
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    Row row;
    row.replicas = replicas;
    row.mode = cluster_mode ? "cluster" : "single";
    const double matched = end[1] - begin[1], copies = end[2] - begin[2];
    row.matched_per_s = matched / took;
    row.copies_per_tweet = matched > 0 ? copies / matched : 0;
    row.redis_bytes_per_tweet = matched > 0 ? (end[0] - begin[0]) / matched : 0;
    row.payload_bytes = copies > 0 ? (end[3] - begin[3]) / copies : 0;
    double intake = 0, unwanted = 0;
    for (int r = 0; r < replicas; ++r) {
        intake += end[4 + 2 * r] - begin[4 + 2 * r];
        unwanted += end[5 + 2 * r] - begin[5 + 2 * r];
    }
    row.intake_per_replica = intake / replicas / took;
    row.unwanted_share = intake > 0 ? unwanted / intake : 0;
    return row;
}

}  // namespace

TEST_CASE("scale-out: Redis bytes per tweet and replica intake, single vs cluster") {
    std::vector<int> counts;
    std::stringstream list(option("BENCH_REPLICAS", "1,2,4,8"));
    for (std::string item; std::getline(list, item, ',');) counts.push_back(std::stoi(item));
    const double seconds = std::stod(option("BENCH_SECONDS", "10"));
    const int rate = std::stoi(option("BENCH_RATE", "1000"));
    const int queries = std::stoi(option("BENCH_QUERIES", "10"));
    const int most = *std::max_element(counts.begin(), counts.end());
    const std::vector<std::string> words = synthetic_words(1, static_cast<std::size_t>(most * queries), 60);
    std::printf("\n| replicas | mode | matched tweets/s | copies published per matched tweet | Redis bytes sent per "
                "matched tweet | payload bytes | intake per replica (payloads/s) | of it for other replicas |\n"
                "|---:|---|---:|---:|---:|---:|---:|---:|\n");
    for (const int replicas : counts)
        for (const bool cluster_mode : {false, true}) {
            const Row r = measure(replicas, cluster_mode, seconds, rate, queries, words);
            std::printf("| %d | %s | %.0f | %.2f | %.0f | %.0f | %.1f | %.0f %% |\n", r.replicas, r.mode.c_str(),
                        r.matched_per_s, r.copies_per_tweet, r.redis_bytes_per_tweet, r.payload_bytes,
                        r.intake_per_replica, 100 * r.unwanted_share);
            std::fflush(stdout);
            CHECK(r.matched_per_s > 0);
        }
}
