#include "tests/support/redis_cluster.h"

#include "common/redis_cluster.h"

#include <hiredis/hiredis.h>

#include <catch2/catch.hpp>

#include <random>

namespace birdwatch::test {

using namespace std::chrono_literals;

namespace {

// CLUSTER SLOTS from `port`: (first slot, last slot, master port) for each range.
std::vector<std::tuple<int, int, unsigned short>> slot_ranges(unsigned short port) {
    std::vector<std::tuple<int, int, unsigned short>> ranges;
    timeval tv{1, 0};
    redisContext* ctx = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!ctx || ctx->err) {
        if (ctx) redisFree(ctx);
        return ranges;
    }
    redisSetTimeout(ctx, tv);
    auto* reply = static_cast<redisReply*>(redisCommand(ctx, "CLUSTER SLOTS"));
    for (std::size_t i = 0; reply && reply->type == REDIS_REPLY_ARRAY && i < reply->elements; ++i) {
        const redisReply* r = reply->element[i];
        if (r->elements >= 3 && r->element[2]->elements >= 2)
            ranges.emplace_back(r->element[0]->integer, r->element[1]->integer,
                                static_cast<unsigned short>(r->element[2]->element[1]->integer));
    }
    if (reply) freeReplyObject(reply);
    redisFree(ctx);
    return ranges;
}

// A free port whose cluster bus port (+10000) is free too: below the ephemeral range,
// which other tests' free_port() draws from, so they do not race for it.
unsigned short free_cluster_port() {
    static std::mt19937 random(std::random_device{}());
    for (int attempt = 0; attempt < 1000; ++attempt) {
        const auto port = static_cast<unsigned short>(std::uniform_int_distribution<int>(20000, 30000)(random));
        if (port_bindable(port) && port_bindable(static_cast<unsigned short>(port + 10000))) return port;
    }
    FAIL("no free pair of ports for a cluster node");
    return 0;
}

}  // namespace

RedisCluster::RedisCluster(const TempDir& dir, int masters, int replicas_per_master) : dir_(dir.path()) {
    const std::string server = find_program("redis-server"), cli = find_program("redis-cli");
    if (server.empty() || cli.empty())
        FAIL("redis-server and redis-cli are needed (apt-get install redis-server, or run scripts/test)");
    std::vector<std::string> create = {cli, "--cluster", "create"};
    for (int i = 0; i < masters * (1 + replicas_per_master); ++i) {
        const unsigned short port = free_cluster_port();
        const std::string p = std::to_string(port);
        nodes_.emplace(port, ChildProcess({server, "--port", p, "--bind", "127.0.0.1", "--save", "", "--appendonly",
                                           "no", "--dir", dir_, "--cluster-enabled", "yes", "--cluster-config-file",
                                           "nodes-" + p + ".conf", "--cluster-node-timeout", "1000",
                                           // a replica takes over however old its copy (tests kill masters at once),
                                           // and copies its master without the default 5 s wait
                                           "--cluster-replica-validity-factor", "0", "--repl-diskless-sync-delay", "0",
                                           "--daemonize", "no"},
                                          dir_ + "/redis-" + p + ".log"));
        create.push_back("127.0.0.1:" + p);
    }
    for (const auto& [port, process] : nodes_)
        if (!wait_until([&, port = port] { return redis_command(port, {"PING"}) == "PONG"; }, 10s))
            FAIL("cluster node " << port << " did not answer PING");
    create.insert(create.end(), {"--cluster-replicas", std::to_string(replicas_per_master), "--cluster-yes"});
    ChildProcess joining(create, dir_ + "/cluster-create.log");
    const auto status = joining.wait_exit(60s);
    if (status != 0) FAIL("redis-cli --cluster create failed:\n" << joining.log_tail());
    if (!healthy(30s)) FAIL("the cluster did not become healthy");
    const bool synced = wait_until([&] {
        for (const auto& [port, process] : nodes_) {
            const std::string info = redis_command(port, {"INFO", "replication"});
            if (info.find("role:slave") != std::string::npos && info.find("master_link_status:up") == std::string::npos)
                return false;
        }
        return true;
    }, 30s);
    if (!synced) FAIL("the cluster's replicas did not finish copying their masters");
}

std::string RedisCluster::seeds() const {
    std::string out;
    for (const auto& [port, process] : nodes_) out += (out.empty() ? "" : ",") + std::string("127.0.0.1:") + std::to_string(port);
    return out;
}

std::vector<unsigned short> RedisCluster::ports() const {
    std::vector<unsigned short> out;
    for (const auto& [port, process] : nodes_) out.push_back(port);
    return out;
}

unsigned short RedisCluster::master_of(const std::string& key) const {
    const int slot = cluster::key_slot(key);
    for (const auto& [port, process] : nodes_)
        for (const auto& [first, last, master] : slot_ranges(port))
            if (slot >= first && slot <= last) return master;
    return 0;
}

void RedisCluster::kill(unsigned short port) { nodes_.at(port).kill(); }

bool RedisCluster::healthy(std::chrono::milliseconds timeout) {
    return wait_until([&] {
        for (auto& [port, process] : nodes_) {
            if (!process.running()) continue;
            if (redis_command(port, {"CLUSTER", "INFO"}).find("cluster_state:ok") == std::string::npos) return false;
            int covered = 0;
            for (const auto& [first, last, master] : slot_ranges(port)) {
                if (!nodes_.count(master) || !nodes_.at(master).running()) return false;
                covered += last - first + 1;
            }
            if (covered != 16384) return false;
        }
        return true;
    }, timeout);
}

std::uint64_t RedisCluster::bytes_sent() const {
    std::uint64_t total = 0;
    for (const auto& [port, process] : nodes_) {
        const std::string info = redis_command(port, {"INFO", "stats"});
        const auto at = info.find("total_net_output_bytes:");
        if (at != std::string::npos) total += std::stoull(info.substr(at + 23));
    }
    return total;
}

}  // namespace birdwatch::test
