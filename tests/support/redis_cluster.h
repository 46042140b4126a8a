#pragma once
// A real Redis Cluster on loopback: redis-server processes with --cluster-enabled,
// joined by `redis-cli --cluster create` (masters and their replicas), each in the
// test's temp dir. A short node timeout, so a killed master fails over in seconds.

#include "tests/support/process.h"

#include <map>
#include <string>
#include <vector>

namespace birdwatch::test {

class RedisCluster {
public:
    // Fails the calling test with a clear message if redis-server or redis-cli is missing.
    RedisCluster(const TempDir& dir, int masters = 3, int replicas_per_master = 1);

    // "127.0.0.1:p1,127.0.0.1:p2,...": the seeds for redis.cluster_nodes.
    std::string seeds() const;
    std::vector<unsigned short> ports() const;
    // The master serving `key`'s slot now (CLUSTER SLOTS from a live node); 0 if none.
    unsigned short master_of(const std::string& key) const;
    void kill(unsigned short port);  // SIGKILL
    // Every slot served by a live master, as every live node sees it.
    bool healthy(std::chrono::milliseconds timeout);
    // Bytes the live nodes have sent to clients (INFO stats total_net_output_bytes), summed.
    std::uint64_t bytes_sent() const;

private:
    std::string dir_;
    std::map<unsigned short, ChildProcess> nodes_;
};

// One command with hiredis on 127.0.0.1:port; the reply as text, array elements joined
// by spaces ("" on error). Shared by RedisServer and RedisCluster.
std::string redis_command(unsigned short port, const std::vector<std::string>& args);

}  // namespace birdwatch::test
