// The README's run command, started as a user would (with prebuilt binaries so the
// test does not rebuild): it prints a URL, a WebSocket client there sees tweets,
// and Ctrl-C (SIGINT) stops every process it started.

#include "tests/support/live_search.h"
#include "tests/support/process.h"
#include "tests/support/ws_client.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <regex>

using namespace birdwatch::test;
using birdwatch::parse_query;
using namespace std::chrono_literals;

TEST_CASE("scripts/run prints a WebSocket URL where tweets arrive, and Ctrl-C stops everything", "[deploy]") {
    TempDir dir;
    ChildProcess run({"/bin/bash", BIRDWATCH_SOURCE_DIR "/scripts/run"}, dir.file("run.log"),
                     {"BIRDWATCH_BIN_DIR=" BIRDWATCH_BINARY_DIR, "BIRDWATCH_RATE=50", "TMPDIR=" + dir.path()});
    const std::regex url_line(R"(Connect a WebSocket client to: ws://127\.0\.0\.1:(\d+)/ws)");
    std::smatch match;
    std::string output;
    if (!wait_until([&] {
            output = run.log_tail(100000);
            return std::regex_search(output, match, url_line);
        }, 30s))
        FAIL("scripts/run printed no URL within 30 s; its output:\n" << run.log_tail(100000));
    INFO(output);
    const auto port = static_cast<unsigned short>(std::stoi(match[1]));

    WsIo io;
    WsClient client(io);
    const HttpReply page = http_get(port, "/");  // the web client is served by the same replica
    CHECK(page.status == 200);
    CHECK(page.body.find("<script type=\"module\" src=\"app.js\">") != std::string::npos);
    CHECK(http_get(port, "/app.js").body.find("from \"./birdwatch.js\"") != std::string::npos);
    CHECK(http_get(port, "/birdwatch.js").body.find("new WebSocket") != std::string::npos);
    CHECK(http_get(port, "/favicon.svg").status == 200);
    CHECK(http_get(port, "/../CMakeLists.txt").status == 404);
    REQUIRE(client.connect(port));
    subscribe(client, "the OR hoy OR heute");
    REQUIRE(wait_until([&] { return tweet_payloads(client).size() >= 10; }, 10s));
    const auto first = nlohmann::json::parse(tweet_payloads(client)[0]);
    CHECK(first["type"] == "tweet");
    CHECK_FALSE(first["tweet"]["text"].get<std::string>().empty());

    run.signal(SIGINT);
    CHECK(run.wait_exit(15s) == 0);
    CHECK(wait_until([&] { return !port_open(port); }, 5s));
    CHECK(run.log_tail().find("run: stopped") != std::string::npos);
}
