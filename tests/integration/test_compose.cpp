// The clients' half of scripts/compose-check: the compose stack (Redis, the ingest, three
// fanouts, nginx) runs in containers, and this test case reaches it only as a user would,
// through nginx's published port, plus the SQLite file on the store's volume to judge
// delivery. The script starts it with the port, the file and the commands that kill or
// restart a container; alone (no BIRDWATCH_COMPOSE_PORT) it is hidden and does nothing.

#include "tests/support/follower.h"
#include "tests/support/process.h"
#include "tests/support/skip.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <iostream>
#include <string>

using namespace birdwatch;
using namespace birdwatch::test;
using namespace std::chrono_literals;

namespace {

std::string env(const char* name) {
    const char* value = std::getenv(name);
    return value ? value : "";
}

// Runs one of the script's container commands (podman kill, restart, stop).
void container_command(const char* variable) {
    const std::string command = env(variable);
    REQUIRE(!command.empty());
    INFO(command);
    REQUIRE(std::system(command.c_str()) == 0);
}

// Pumps every follower, reconnecting those whose replica went away, until `done` holds.
template <typename Done>
bool follow_until(WsIo& io, unsigned short port, std::vector<std::unique_ptr<Follower>>& followers, Done done,
                  std::chrono::milliseconds timeout) {
    return pump_until(followers, [&] {
        for (auto& f : followers) f->reconnect_if_closed(io, port);
        return done();
    }, timeout);
}

std::size_t reconnects(const std::vector<std::unique_ptr<Follower>>& followers) {
    std::size_t n = 0;
    for (const auto& f : followers) n += f->reconnects;
    return n;
}

}  // namespace

TEST_CASE("compose stack: 100 clients through nginx see their matches, live through a fanout container killed and "
          "Redis's container restarted, and end with every stored matching tweet once", "[.compose]") {
    const std::string port_text = env("BIRDWATCH_COMPOSE_PORT");
    if (port_text.empty()) SKIP_TEST("run by scripts/compose-check, which brings the stack up and sets BIRDWATCH_COMPOSE_PORT");
    const auto port = static_cast<unsigned short>(std::stoi(port_text));
    const std::string db = env("BIRDWATCH_COMPOSE_DB");
    const auto seed = std::stoull(env("BIRDWATCH_COMPOSE_SEED"));

    // 20 queries, five clients each, from the ranks of the corpus where a word matches a
    // few tweets a second at the check's rate.
    const std::vector<std::string> queries = synthetic_words(seed, 20, 10);
    WsIo io;
    std::vector<std::unique_ptr<Follower>> followers;
    for (int c = 0; c < 100; ++c) followers.push_back(std::make_unique<Follower>(io, port, queries[c % queries.size()]));
    REQUIRE(follow_until(io, port, followers, [&] {
        return std::all_of(followers.begin(), followers.end(), [](const auto& f) { return f->history_done; }) &&
               live_total(followers) >= 1000;
    }, 60s));

    // A fanout container dies: its clients' connections close, nginx sends them to the others.
    container_command("BIRDWATCH_COMPOSE_KILL_FANOUT");
    std::size_t before = live_total(followers);
    REQUIRE(follow_until(io, port, followers, [&] {
        return reconnects(followers) > 0 && all_settled(followers) && live_total(followers) >= before + 1000;
    }, 60s));
    const std::size_t moved = reconnects(followers);
    CHECK(moved >= 10);  // least_conn spreads 100 clients over three replicas
    CHECK(moved < followers.size());

    // Redis's container restarts: every replica resubscribes and tells its clients the gap.
    std::vector<std::size_t> gaps_before;
    for (const auto& f : followers) gaps_before.push_back(f->gaps);
    container_command("BIRDWATCH_COMPOSE_RESTART_REDIS");
    REQUIRE(follow_until(io, port, followers, [&] {
        for (std::size_t i = 0; i < followers.size(); ++i)
            if (followers[i]->gaps == gaps_before[i]) return false;
        return true;
    }, 90s));
    before = live_total(followers);
    REQUIRE(follow_until(io, port, followers, [&] { return live_total(followers) >= before + 1000; }, 60s));

    // The ingest stops (SIGTERM, drained): the store is final; every client settles on it.
    container_command("BIRDWATCH_COMPOSE_STOP_INGEST");
    CHECK(follow_until(io, port, followers, [&] { return all_settled(followers); }, 60s));
    follow_until(io, port, followers, [] { return false; }, 2s);  // the last publications arrive
    CHECK(reconnects(followers) == moved);
    check_complete(followers, db);

    std::size_t received = 0, gaps = 0;
    for (const auto& f : followers) received += f->got.size(), gaps += f->gaps;
    std::cout << "compose-check: " << followers.size() << " clients through nginx, " << moved
              << " reconnected and resumed after their fanout was killed, " << gaps
              << " gaps announced after Redis restarted, " << received << " distinct tweets received (history, live, "
              << "resumed), each client exactly its stored matches\n";
}
