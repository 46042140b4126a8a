#pragma once
// A real redis-server on a free loopback port, in its own temp dir, no persistence.

#include "tests/support/process.h"
#include "tests/support/redis_cluster.h"

#include <string>
#include <vector>

namespace birdwatch::test {

class RedisServer {
public:
    // Fails the calling test with a clear message if redis-server is not installed.
    explicit RedisServer(const TempDir& dir);
    void start();
    void kill();  // SIGKILL: as abrupt as a crash
    unsigned short port() const { return port_; }
    // Runs one command with hiredis; returns the reply as text, array elements joined by
    // spaces ("" on error).
    std::string command(const std::vector<std::string>& args) const;

private:
    std::string binary_;
    std::string dir_;
    unsigned short port_;
    ChildProcess process_;
};

}  // namespace birdwatch::test
