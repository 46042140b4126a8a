#include "tests/support/ws_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace birdwatch::test {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

struct WsIo::Impl {
    net::io_context io;
    net::executor_work_guard<net::io_context::executor_type> work{io.get_executor()};
    std::thread thread{[this] { io.run(); }};
    ~Impl() {
        work.reset();
        io.stop();
        thread.join();
    }
};

WsIo::WsIo() : impl_(std::make_unique<Impl>()) {}
WsIo::~WsIo() = default;

struct WsClient::State : std::enable_shared_from_this<WsClient::State> {
    explicit State(net::io_context& io) : ws(net::make_strand(io)) {}

    websocket::stream<beast::tcp_stream> ws;
    std::string host = "127.0.0.1";
    beast::flat_buffer buffer;
    std::deque<std::string> outbox;
    bool writing = false;
    bool paused = false, stalled = false;  // reading paused; no read outstanding meanwhile

    mutable std::mutex mutex;
    mutable std::condition_variable changed;
    std::vector<std::string> received;
    bool connected = false, finished = false;
    std::optional<int> close_code;
    std::string error;

    void fail(const std::string& what, beast::error_code ec) {
        std::lock_guard lock(mutex);
        if (error.empty()) error = what + ": " + ec.message();
        if (ws.reason().code != websocket::close_code::none) close_code = static_cast<int>(ws.reason().code);
        finished = true;
        changed.notify_all();
    }

    void read() {
        ws.async_read(buffer, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (ec) return self->fail("read", ec);
            {
                std::lock_guard lock(self->mutex);
                // A frame carries one or more messages, '\n'-separated (docs/protocol.md).
                const std::string frame = beast::buffers_to_string(self->buffer.data());
                for (std::size_t start = 0;;) {
                    const std::size_t end = frame.find('\n', start);
                    self->received.push_back(frame.substr(start, end - start));
                    if (end == std::string::npos) break;
                    start = end + 1;
                }
                self->changed.notify_all();
            }
            self->buffer.consume(self->buffer.size());
            if (self->paused) self->stalled = true;
            else self->read();
        });
    }

    void write_next() {
        if (writing || outbox.empty()) return;
        writing = true;
        ws.async_write(net::buffer(outbox.front()), [self = shared_from_this()](beast::error_code ec, std::size_t) {
            self->writing = false;
            self->outbox.pop_front();
            if (ec) return self->fail("write", ec);
            self->write_next();
        });
    }
};

WsClient::WsClient(WsIo& io) : state_(std::make_shared<State>(io.impl().io)) {}
WsClient::WsClient(WsClient&&) noexcept = default;
WsClient::~WsClient() {
    if (state_) close();
}

bool WsClient::connect(unsigned short port, const std::string& target, std::chrono::milliseconds timeout,
                       const std::string& origin) {
    auto s = state_;
    if (!origin.empty())
        s->ws.set_option(websocket::stream_base::decorator(
            [origin](websocket::request_type& req) { req.set(beast::http::field::origin, origin); }));
    net::post(s->ws.get_executor(), [s, port, target] {
        beast::get_lowest_layer(s->ws).expires_after(std::chrono::seconds(10));
        beast::get_lowest_layer(s->ws).async_connect(
            tcp::endpoint(net::ip::make_address(s->host), port), [s, port, target](beast::error_code ec) {
                if (ec) return s->fail("connect", ec);
                s->ws.async_handshake(s->host + ":" + std::to_string(port), target, [s](beast::error_code ec) {
                    if (ec) return s->fail("handshake", ec);
                    beast::get_lowest_layer(s->ws).expires_never();
                    {
                        std::lock_guard lock(s->mutex);
                        s->connected = true;
                        s->changed.notify_all();
                    }
                    s->read();
                });
            });
    });
    std::unique_lock lock(s->mutex);
    s->changed.wait_for(lock, timeout, [&] { return s->connected || s->finished; });
    if (!s->connected && s->error.empty()) s->error = "connect timed out";
    return s->connected;
}

void WsClient::set_host(const std::string& host) { state_->host = host; }

void WsClient::send(const std::string& text) {
    auto s = state_;
    net::post(s->ws.get_executor(), [s, text] {
        s->outbox.push_back(text);
        s->write_next();
    });
}

void WsClient::pause_reading(bool paused) {
    auto s = state_;
    net::post(s->ws.get_executor(), [s, paused] {
        s->paused = paused;
        if (!paused && std::exchange(s->stalled, false)) s->read();
    });
}

void WsClient::close() {
    auto s = state_;
    net::post(s->ws.get_executor(), [s] {
        if (s->ws.is_open()) s->ws.async_close(websocket::close_code::normal, [s](beast::error_code) {});
    });
}

std::size_t WsClient::message_count() const {
    std::lock_guard lock(state_->mutex);
    return state_->received.size();
}

std::vector<std::string> WsClient::messages() const {
    std::lock_guard lock(state_->mutex);
    return state_->received;
}

std::vector<std::string> WsClient::messages_since(std::size_t first) const {
    std::lock_guard lock(state_->mutex);
    if (first >= state_->received.size()) return {};
    return {state_->received.begin() + static_cast<std::ptrdiff_t>(first), state_->received.end()};
}

std::vector<std::string> WsClient::take_messages() {
    std::lock_guard lock(state_->mutex);
    std::vector<std::string> taken;
    taken.swap(state_->received);
    return taken;
}

bool WsClient::wait_for_messages(std::size_t count, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(state_->mutex);
    return state_->changed.wait_for(lock, timeout, [&] { return state_->received.size() >= count || state_->finished; }) &&
           state_->received.size() >= count;
}

bool WsClient::is_open() const {
    std::lock_guard lock(state_->mutex);
    return state_->connected && !state_->finished;
}

std::optional<int> WsClient::close_code() const {
    std::lock_guard lock(state_->mutex);
    return state_->close_code;
}

std::string WsClient::error() const {
    std::lock_guard lock(state_->mutex);
    return state_->error;
}

}  // namespace birdwatch::test

namespace birdwatch::test {

int connect_and_stall(unsigned short port, const std::string& query) {
    net::io_context io;
    tcp::socket socket(io);
    beast::error_code ec;
    socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
    if (ec) return -1;
    const std::string upgrade = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    net::write(socket, net::buffer(upgrade), ec);
    std::string response;
    char c;
    while (!ec && response.find("\r\n\r\n") == std::string::npos) {
        net::read(socket, net::buffer(&c, 1), ec);
        response.push_back(c);
    }
    if (ec || response.find(" 101 ") == std::string::npos) return -1;
    // One masked text frame (RFC 6455 5.2): the subscribe message.
    const std::string payload = R"({"type":"subscribe","query":")" + query + R"("})";
    std::string frame = {'\x81', static_cast<char>(0x80 | payload.size())};
    const char mask[4] = {0x12, 0x34, 0x56, 0x78};
    frame.append(mask, 4);
    for (std::size_t i = 0; i < payload.size(); ++i) frame.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
    net::write(socket, net::buffer(frame), ec);
    if (ec) return -1;
    return socket.release();  // from here on, nobody reads it
}

}  // namespace birdwatch::test
