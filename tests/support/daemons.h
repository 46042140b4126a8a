#pragma once
// Starting the project's own daemons as real processes for integration tests.

#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <csignal>
#include <thread>

#include <string>
#include <vector>

namespace birdwatch::test {

inline ChildProcess start_fanout(const TempDir& dir, const std::string& name, unsigned short redis_port,
                                 unsigned short http_port, const std::vector<std::string>& extra = {},
                                 const std::vector<std::string>& env = {}) {
    // Short leases so that expiry is observable within a test.
    std::vector<std::string> argv = {BIRDWATCH_FANOUT_BIN, "--redis.port", std::to_string(redis_port),
                                     "--http.port", std::to_string(http_port), "--http.threads", "2",
                                     "--registry.lease_ttl_ms=2000", "--registry.refresh_ms=500"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    ChildProcess fanout(argv, dir.file(name + ".log"), env);
    const bool ready = wait_until([&] { return http_get(http_port, "/readyz").status == 200; }, std::chrono::seconds(10));
    if (!ready) FAIL(name << " did not become ready on port " << http_port << ":\n" << fanout.log_tail());
    return fanout;
}

inline ChildProcess start_ingest(const TempDir& dir, const std::string& name, unsigned short redis_port,
                                 const std::vector<std::string>& extra) {
    // No admin HTTP port unless the test asks for one (extra "--http.port=N"), so parallel tests never collide.
    std::vector<std::string> argv = {BIRDWATCH_INGEST_BIN, "--redis.port", std::to_string(redis_port),
                                     "--registry.sweep_ms=200", "--http.port=-1",
                                     "--store.sqlite.path=" + dir.file(name + ".db"),
                                     "--store.spool.dir=" + dir.file(name + "-spool")};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return ChildProcess(argv, dir.file(name + ".log"));
}

}  // namespace birdwatch::test
