#include "tests/support/ws_client.h"

#include <boost/asio/connect.hpp>
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
    beast::flat_buffer buffer;
    std::deque<std::string> outbox;
    bool writing = false;

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
                self->received.push_back(beast::buffers_to_string(self->buffer.data()));
                self->changed.notify_all();
            }
            self->buffer.consume(self->buffer.size());
            self->read();
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

bool WsClient::connect(unsigned short port, const std::string& target, std::chrono::milliseconds timeout) {
    auto s = state_;
    net::post(s->ws.get_executor(), [s, port, target] {
        beast::get_lowest_layer(s->ws).expires_after(std::chrono::seconds(10));
        beast::get_lowest_layer(s->ws).async_connect(
            tcp::endpoint(net::ip::make_address("127.0.0.1"), port), [s, port, target](beast::error_code ec) {
                if (ec) return s->fail("connect", ec);
                s->ws.async_handshake("127.0.0.1:" + std::to_string(port), target, [s](beast::error_code ec) {
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

void WsClient::send(const std::string& text) {
    auto s = state_;
    net::post(s->ws.get_executor(), [s, text] {
        s->outbox.push_back(text);
        s->write_next();
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
