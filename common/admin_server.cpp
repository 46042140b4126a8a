#include "common/admin_server.h"

#include "common/thread_guard.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <thread>

namespace birdwatch {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

class AdminSession : public std::enable_shared_from_this<AdminSession> {
public:
    AdminSession(tcp::socket socket, const AdminState& state) : stream_(std::move(socket)), state_(state) {}
    void run() { read(); }

private:
    void read() {
        request_ = {};
        stream_.expires_after(std::chrono::seconds(30));
        http::async_read(stream_, buffer_, request_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (!ec) self->answer();
        });
    }

    void answer() {
        const AdminReply reply = admin_route(request_.target(), state_).value_or(AdminReply{404, "text/plain", "not found\n"});
        auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(reply.status),
                                                                        request_.version());
        res->set(http::field::content_type, reply.content_type);
        res->keep_alive(request_.keep_alive());
        res->body() = reply.body;
        res->prepare_payload();
        http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
            if (!ec && res->keep_alive()) self->read();
        });
    }

    beast::tcp_stream stream_;
    const AdminState& state_;
    beast::flat_buffer buffer_;
    http::request<http::string_body> request_;
};

}  // namespace

struct AdminServer::Impl {
    Impl(std::string a, unsigned short p, AdminState s) : address(std::move(a)), port(p), state(std::move(s)) {}

    void accept() {
        acceptor.async_accept(net::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
            if (!acceptor.is_open()) return;
            if (!ec) {
                std::make_shared<AdminSession>(std::move(socket), state)->run();
                return accept();
            }
            // Out of descriptors (or another failure that repeats at once): no spinning.
            pause.expires_after(std::chrono::milliseconds(100));
            pause.async_wait([this](beast::error_code wait_error) {
                if (!wait_error && acceptor.is_open()) accept();
            });
        });
    }

    std::string address;
    unsigned short port;
    AdminState state;
    net::io_context io;
    tcp::acceptor acceptor{io};
    net::steady_timer pause{io};
    ThreadGuard guard{"admin-http", state.metrics};
    std::thread thread;
};

AdminServer::AdminServer(std::string address, unsigned short port, AdminState state)
    : impl_(std::make_unique<Impl>(std::move(address), port, std::move(state))) {}

AdminServer::~AdminServer() { stop(); }

void AdminServer::start() {
    const tcp::endpoint endpoint(net::ip::make_address(impl_->address), impl_->port);
    impl_->acceptor.open(endpoint.protocol());
    impl_->acceptor.set_option(net::socket_base::reuse_address(true));
    impl_->acceptor.bind(endpoint);
    impl_->acceptor.listen();
    impl_->port = impl_->acceptor.local_endpoint().port();
    impl_->accept();
    impl_->thread = std::thread([this] { impl_->guard.run([this] { impl_->io.run(); }, {}); });
}

unsigned short AdminServer::port() const { return impl_->port; }

void AdminServer::stop() {
    if (!impl_->thread.joinable()) return;
    net::post(impl_->io, [this] {
        beast::error_code ignored;
        impl_->acceptor.close(ignored);
    });
    impl_->io.stop();
    impl_->thread.join();
}

}  // namespace birdwatch
