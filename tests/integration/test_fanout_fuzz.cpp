// Garbage at a fanout replica: random and malformed WebSocket frames and oversized
// messages from several raw clients. The replica must answer or close each of them,
// never crash (the test command runs it under ASan/UBSan), and a well-behaved client
// on the same replica must keep receiving.

#include "tests/support/client_frames.h"
#include "tests/support/daemons.h"
#include "tests/support/live_search.h"
#include "tests/support/redis_server.h"
#include "tests/support/ws_client.h"

#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <random>

using namespace birdwatch;
using namespace birdwatch::test;
using namespace std::chrono_literals;

namespace {

int open_upgraded(unsigned short port) {
    const int fd = connect_loopback(port);
    if (fd < 0) return -1;
    timeval tv{0, 200000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const std::string upgrade = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    (void)!::send(fd, upgrade.data(), upgrade.size(), MSG_NOSIGNAL);
    char buffer[1024];
    (void)!::recv(fd, buffer, sizeof buffer, 0);
    return fd;
}

// One frame: mostly well-formed masked text frames with garbage inside, sometimes
// broken at the framing level (bad opcode, reserved bits, no mask, lying length,
// control frame too long, invalid UTF-8, oversized payload).
std::string random_frame(std::mt19937& rng) {
    std::string payload;
    const int kind = static_cast<int>(rng() % 10);
    const std::size_t length = kind == 9 ? 20000 + rng() % 20000 : rng() % 300;
    for (std::size_t i = 0; i < length; ++i) payload.push_back(static_cast<char>(kind < 5 ? 32 + rng() % 95 : rng() % 256));
    if (kind == 0) payload = R"({"type":")" + payload.substr(0, 20) + R"("})";
    std::uint8_t first = 0x81;  // FIN + text
    bool masked = true;
    if (kind == 6) first = static_cast<std::uint8_t>(0x80 | (rng() % 16));   // any opcode
    if (kind == 7) first = static_cast<std::uint8_t>(0x81 | ((rng() % 7 + 1) << 4));  // reserved bits
    if (kind == 8) masked = rng() % 2;                                        // unmasked client frame
    const std::array<char, 4> mask = {static_cast<char>(rng()), static_cast<char>(rng()), static_cast<char>(rng()),
                                      static_cast<char>(rng())};
    std::string frame = client_frame(first, payload, masked, mask);
    if (kind == 5 && frame.size() > 4) frame.resize(frame.size() / 2);  // truncated: the length lies
    return frame;
}

}  // namespace

TEST_CASE("fuzz: 10,000 random and malformed frames from several clients, the replica survives, others unaffected",
          "[fanout][fuzz]") {
    TempDir dir;
    RedisServer redis(dir);
    const unsigned short port = free_port();
    ChildProcess fanout = start_fanout(dir, "fanout", redis.port(), port,
                                       {"--websocket.messages_per_second=100000", "--websocket.message_burst=100000",
                                        "--websocket.error_budget=1000000"});
    WsIo io;
    WsClient good(io);
    REQUIRE(good.connect(port));
    subscribe(good, "the OR hoy OR heute");
    ChildProcess ingest = start_ingest(dir, "ingest", redis.port(), {"--source.synthetic.rate=300", "--store.kind=none"});
    REQUIRE(wait_until([&] { return tweet_payloads(good).size() >= 10; }, 10s));

    std::mt19937 rng(2026);
    int sent = 0, connections = 0, closed_by_server = 0;
    std::vector<int> fuzzers;
    for (int i = 0; i < 6; ++i) fuzzers.push_back(open_upgraded(port));
    connections += 6;
    char sink[65536];
    while (sent < 10000) {
        for (int& fd : fuzzers) {
            const std::string frame = random_frame(rng);
            if (::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL) < 0 || ::recv(fd, sink, sizeof sink, MSG_DONTWAIT) == 0) {
                ++closed_by_server;  // the replica closed this one (protocol error, size, ...): take a new one
                ::close(fd);
                fd = open_upgraded(port);
                ++connections;
            }
            ++sent;
        }
    }
    for (int fd : fuzzers) ::close(fd);

    INFO("frames sent: " << sent << ", connections: " << connections << ", closed by the server: " << closed_by_server);
    CHECK(closed_by_server > 100);  // malformed frames were refused, connection by connection
    REQUIRE(fanout.running());
    CHECK(http_get(port, "/healthz").status == 200);
    const std::size_t before = tweet_payloads(good).size();
    REQUIRE(wait_until([&] { return tweet_payloads(good).size() >= before + 20; }, 10s));
    CHECK(good.is_open());
    WsClient late(io);  // and it still accepts and serves new clients
    REQUIRE(late.connect(port));
    subscribe(late, "the");
    fanout.signal(SIGTERM);
    CHECK(fanout.wait_exit(10s) == 0);  // clean exit: under ASan a leak or error would fail it
}
