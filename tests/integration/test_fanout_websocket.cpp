// RFC 6455 as a fanout replica speaks it on the socket, seen from raw TCP clients:
// the handshake and its refusals, pings answered with pongs, a client's close
// echoed, each protocol violation closed with its code and reason, and the idle
// timeout (a ping at half of it, then the connection closed).

#include "tests/support/client_frames.h"
#include "tests/support/daemons.h"
#include "tests/support/live_search.h"
#include "tests/support/redis_server.h"
#include "tests/support/ws_client.h"

#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>

using namespace birdwatch;
using namespace birdwatch::test;
using namespace std::chrono_literals;

namespace {

struct Frame {
    int opcode;
    std::string payload;
};

class RawClient {
public:
    explicit RawClient(unsigned short port) : fd_(connect_loopback(port)) { REQUIRE(fd_ >= 0); }
    ~RawClient() { ::close(fd_); }

    // The server's HTTP answer to an upgrade request (status line and headers).
    std::string upgrade(const std::string& version = "13") {
        send_raw("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: " + version + "\r\n\r\n");
        std::string head;
        while (head.find("\r\n\r\n") == std::string::npos) {
            char c;
            if (!read_exact(&c, 1, 2s)) break;
            head.push_back(c);
        }
        return head;
    }

    void send_raw(const std::string& bytes) { (void)!::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL); }

    void send_frame(std::uint8_t first, const std::string& payload, bool masked = true) {
        send_raw(client_frame(first, payload, masked));
    }

    // The next server frame, or nothing when the connection ends or `timeout` passes.
    std::optional<Frame> read_frame(std::chrono::milliseconds timeout = 3000ms) {
        unsigned char head[2];
        if (!read_exact(reinterpret_cast<char*>(head), 2, timeout)) return std::nullopt;
        CHECK((head[0] & 0x80) != 0);  // the server never fragments
        CHECK((head[1] & 0x80) == 0);  // nor masks
        std::uint64_t length = head[1] & 0x7F;
        if (length >= 126) {
            unsigned char ext[8];
            const std::size_t n = length == 126 ? 2 : 8;
            if (!read_exact(reinterpret_cast<char*>(ext), n, timeout)) return std::nullopt;
            length = 0;
            for (std::size_t i = 0; i < n; ++i) length = (length << 8) | ext[i];
        }
        std::string payload(length, '\0');
        if (!read_exact(payload.data(), length, timeout)) return std::nullopt;
        return Frame{head[0] & 0x0F, payload};
    }

    // True when the server closed the TCP connection within `timeout`.
    bool closed_by_server(std::chrono::milliseconds timeout = 3000ms) {
        char sink[4096];
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            const ssize_t n = ::recv(fd_, sink, sizeof sink, 0);
            if (n <= 0) return true;
        }
        return false;
    }

private:
    bool read_exact(char* out, std::size_t size, std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        std::size_t got = 0;
        while (got < size) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return false;
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
            const ssize_t n = ::recv(fd_, out + got, size - got, 0);
            if (n <= 0) return false;
            got += static_cast<std::size_t>(n);
        }
        return true;
    }

    int fd_;
};

std::uint16_t close_code_of(const Frame& frame) {
    REQUIRE(frame.payload.size() >= 2);
    return static_cast<std::uint16_t>((static_cast<unsigned char>(frame.payload[0]) << 8) |
                                      static_cast<unsigned char>(frame.payload[1]));
}

}  // namespace

TEST_CASE("RFC 6455 on the socket: handshake, refusals, ping, close echo and violations with their codes",
          "[fanout]") {
    TempDir dir;
    RedisServer redis(dir);
    const unsigned short port = free_port();
    ChildProcess fanout = start_fanout(dir, "fanout", redis.port(), port);

    {
        RawClient client(port);
        const std::string head = client.upgrade();
        CHECK(head.starts_with("HTTP/1.1 101"));
        CHECK(head.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") != std::string::npos);
        // A ping, then a subscribe in three fragments with a ping between them.
        client.send_frame(0x89, "are you there");
        auto pong = client.read_frame();
        REQUIRE(pong);
        CHECK(pong->opcode == 0xA);
        CHECK(pong->payload == "are you there");
        client.send_frame(0x01, R"({"type":"subs)");
        client.send_frame(0x89, "");
        client.send_frame(0x00, R"(cribe","query":)");
        client.send_frame(0x80, R"("birds"})");
        pong = client.read_frame();
        REQUIRE(pong);
        CHECK(pong->opcode == 0xA);
        const auto reply = client.read_frame();
        REQUIRE(reply);
        CHECK(reply->opcode == 0x1);
        CHECK(reply->payload.find(R"("type":"subscribed")") != std::string::npos);
        // The client's close is echoed with its code, then the server closes the connection.
        client.send_frame(0x88, std::string("\x0f\xa0", 2) + "done");  // 4000
        const auto close = client.read_frame();
        REQUIRE(close);
        CHECK(close->opcode == 0x8);
        CHECK(close_code_of(*close) == 4000);
        CHECK(client.closed_by_server());
    }
    {
        RawClient client(port);
        const std::string head = client.upgrade("8");
        CHECK(head.starts_with("HTTP/1.1 426"));
        CHECK(head.find("Sec-WebSocket-Version: 13\r\n") != std::string::npos);
        CHECK(client.closed_by_server());
    }
    struct Violation {
        std::uint8_t first;
        std::string payload;
        bool masked;
        std::uint16_t code;
        std::string reason;
    };
    const std::vector<Violation> violations = {
        {0x81, R"({"type":"subscribe"})", false, 1002, "a client's frames must be masked"},
        {0xA1, "x", true, 1002, "reserved bits set, but no extension was negotiated"},
        {0x87, "x", true, 1002, "unknown opcode 7"},
        {0x80, "x", true, 1002, "a continuation frame with no message to continue"},
        {0x81, "\xc0\xaf", true, 1007, "a text message that is not valid UTF-8"},
        {0x88, "\x03\xee", true, 1002, "close code 1006 is not one a peer may send"},
    };
    for (const auto& v : violations) {
        INFO(v.reason);
        RawClient client(port);
        REQUIRE(client.upgrade().starts_with("HTTP/1.1 101"));
        client.send_frame(v.first, v.payload, v.masked);
        const auto close = client.read_frame();
        REQUIRE(close);
        CHECK(close->opcode == 0x8);
        CHECK(close_code_of(*close) == v.code);
        CHECK(close->payload.substr(2) == v.reason);
        CHECK(client.closed_by_server());
    }
    CHECK(metric(port, "birdwatch_fanout_protocol_errors_total") == static_cast<double>(violations.size()));
    CHECK(metric(port, "birdwatch_fanout_handshakes_refused_total") == 1);
    CHECK(http_get(port, "/healthz").status == 200);
    fanout.signal(SIGTERM);
    CHECK(fanout.wait_exit(10s) == 0);
}

TEST_CASE("an idle client is pinged at half the idle timeout and closed after it, one that answers stays",
          "[fanout]") {
    TempDir dir;
    RedisServer redis(dir);
    const unsigned short port = free_port();
    ChildProcess fanout = start_fanout(dir, "fanout", redis.port(), port, {"--websocket.idle_timeout_ms=800"});

    WsIo io;
    WsClient answering(io);  // Beast's client answers pings with pongs
    const auto answering_since = std::chrono::steady_clock::now();
    REQUIRE(answering.connect(port));
    RawClient silent(port);
    REQUIRE(silent.upgrade().starts_with("HTTP/1.1 101"));
    const auto started = std::chrono::steady_clock::now();
    auto ping = silent.read_frame(2000ms);
    while (ping && ping->opcode == 0x1) ping = silent.read_frame(2000ms);  // stats broadcasts
    REQUIRE(ping);
    CHECK(ping->opcode == 0x9);
    CHECK(std::chrono::steady_clock::now() - started >= 300ms);
    CHECK(silent.closed_by_server(3000ms));
    CHECK(std::chrono::steady_clock::now() - started >= 700ms);
    CHECK(metric(port, "birdwatch_fanout_idle_closes_total") == 1);
    // What is under test is time itself: two idle timeouts after it connected, the client
    // that answers pings is still open (silent, it would have been closed after one).
    std::this_thread::sleep_until(answering_since + 2 * 800ms);
    CHECK(answering.is_open());
    CHECK(metric(port, "birdwatch_fanout_idle_closes_total") == 1);
}

// Each client's query is acquired and released within microseconds, so the registrar
// sees both in one batch: the case that once read a freed registry entry.
TEST_CASE("subscribe-and-vanish churn: 300 clients subscribe and drop at once, the replica and its registry carry on",
          "[fanout]") {
    TempDir dir;
    RedisServer redis(dir);
    const unsigned short port = free_port();
    ChildProcess fanout = start_fanout(dir, "fanout", redis.port(), port);
    for (int i = 0; i < 300; ++i) {
        RawClient client(port);
        REQUIRE(client.upgrade().starts_with("HTTP/1.1 101"));
        client.send_frame(0x81, R"({"type":"subscribe","query":"churn)" + std::to_string(i) + R"("})");
    }
    WsIo io;
    WsClient survivor(io);
    REQUIRE(survivor.connect(port));
    const std::string qid = subscribe(survivor, "survivor");
    CHECK(wait_until([&] { return redis.command({"HGET", "{birdwatch}:queries", qid}) == "survivor"; }, 5s));
    CHECK(fanout.running());
    fanout.signal(SIGTERM);
    CHECK(fanout.wait_exit(10s) == 0);
}
