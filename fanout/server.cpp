#include "fanout/server.h"

#include "common/admin_routes.h"
#include "common/log.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <unordered_map>
#include <thread>
#include <vector>

namespace birdwatch {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

// The web client's files, read once at start: no disk I/O on an Asio thread.
struct StaticFile {
    std::string content_type, body;
};
using StaticFiles = std::unordered_map<std::string, StaticFile>;

// The page runs only what this replica served and talks only to it: no inline script or
// style, nothing from elsewhere, not framed, no referrer leaked to the links it shows.
void set_page_security_headers(http::response<http::string_body>& res) {
    res.set("Content-Security-Policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    res.set("X-Content-Type-Options", "nosniff");
    res.set("X-Frame-Options", "DENY");
    res.set("Referrer-Policy", "no-referrer");
    res.set("Cross-Origin-Opener-Policy", "same-origin");
    res.set("Cross-Origin-Resource-Policy", "same-origin");
    res.set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()");
}

StaticFiles load_static_files(const std::string& dir) {
    StaticFiles files;
    if (dir.empty()) return files;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        if (!entry.is_regular_file()) continue;
        const std::string ext = entry.path().extension().string();
        const char* type = ext == ".html" ? "text/html; charset=utf-8"
                           : ext == ".js" ? "text/javascript; charset=utf-8"
                           : ext == ".css" ? "text/css; charset=utf-8"
                           : ext == ".svg" ? "image/svg+xml"
                           : ext == ".ico" ? "image/x-icon"
                           : ext == ".png" ? "image/png"
                                           : "application/octet-stream";
        std::ifstream in(entry.path(), std::ios::binary);
        files["/" + entry.path().filename().string()] = {type, std::string(std::istreambuf_iterator<char>(in), {})};
    }
    if (ec) throw std::runtime_error("http.static_dir: cannot read " + dir + ": " + ec.message());
    if (files.count("/index.html")) files["/"] = files["/index.html"];
    return files;
}

struct HttpContext {
    const StaticFiles& static_files;
    Hub& hub;
    const ServerOptions& options;
    Counter& refused_capacity;
    Counter& refused_origin;
    Counter& refused_token;
    Counter& header_too_large;
    Counter& body_too_large;
    Counter& malformed;
    // Open, not (yet) WebSocket sessions. Shared: a session whose read is still pending at
    // shutdown is destroyed with its loop, after the server.
    std::shared_ptr<std::atomic<std::size_t>> http_connections;
    MetricsRegistry& metrics;
    std::function<bool()> ready;
    std::atomic<bool>& draining;
    WebSocketSessions& sessions;
};

namespace {

http::response<http::string_body> respond(const http::request<http::string_body>& req, http::status status,
                                          std::string body, const char* content_type = "text/plain") {
    http::response<http::string_body> res{status, req.version()};
    res.set(http::field::server, "birdwatch-fanout");
    res.set(http::field::content_type, content_type);
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

// An answer to a request that could not be read: the connection closes after it.
http::response<http::string_body> refusal(http::status status, std::string body) {
    http::response<http::string_body> res{status, 11};
    res.set(http::field::server, "birdwatch-fanout");
    res.set(http::field::content_type, "text/plain");
    res.keep_alive(false);
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

// Plain HTTP on one connection until it asks for a WebSocket upgrade.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
public:
    HttpSession(tcp::socket socket, std::size_t loop, HttpContext& context)
        : stream_(std::move(socket)), loop_(loop), context_(context), open_(context.http_connections) {
        open_->fetch_add(1, std::memory_order_relaxed);
    }
    ~HttpSession() { open_->fetch_sub(1, std::memory_order_relaxed); }

    void run() { read(); }

private:
    void read() {
        parser_.emplace();
        parser_->header_limit(static_cast<std::uint32_t>(context_.options.max_header_bytes));
        parser_->body_limit(context_.options.max_body_bytes);
        buffer_.max_size(context_.options.max_header_bytes + context_.options.max_body_bytes + 4096);
        stream_.expires_after(30s);
        http::async_read(stream_, buffer_, *parser_,
                         [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec) {
        if (ec) return refuse_unreadable(ec);
        http::request<http::string_body> req = parser_->release();
        if (beast::websocket::is_upgrade(req)) {
            const std::string_view target = req.target();
            const std::string_view path = target.substr(0, target.find('?'));
            if (path != "/ws") return send(respond(req, http::status::not_found, "WebSocket endpoint is /ws\n"));
            if (context_.draining) return send(respond(req, http::status::service_unavailable, "draining\n"));
            if (context_.hub.size() >= context_.options.max_connections) {
                context_.refused_capacity.inc();
                return send(respond(req, http::status::service_unavailable, "too many connections on this replica\n"));
            }
            if (!origin_allowed(req)) {
                context_.refused_origin.inc();
                return send(respond(req, http::status::forbidden, "origin not allowed\n"));
            }
            if (!token_valid(req, target)) {
                context_.refused_token.inc();
                return send(respond(req, http::status::unauthorized, "missing or wrong token\n"));
            }
            stream_.expires_never();
            const std::string_view early(static_cast<const char*>(buffer_.data().data()), buffer_.size());
            context_.sessions.start(stream_.release_socket(), loop_, req, early);
            return;
        }
        send(route(req));
    }

    // A request that broke a limit or the grammar gets its status and a closed connection;
    // a peer that went away or timed out gets nothing.
    void refuse_unreadable(beast::error_code ec) {
        if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == net::error::eof ||
            ec == net::error::connection_reset || ec == net::error::operation_aborted || ec == http::error::partial_message)
            return;
        if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
            context_.header_too_large.inc();
            return send(refusal(http::status::request_header_fields_too_large,
                                "request line and headers over " + std::to_string(context_.options.max_header_bytes) +
                                    " bytes\n"));
        }
        if (ec == http::error::body_limit) {
            context_.body_too_large.inc();
            return send(refusal(http::status::payload_too_large,
                                "body over " + std::to_string(context_.options.max_body_bytes) + " bytes\n"));
        }
        context_.malformed.inc();
        send(refusal(http::status::bad_request, "malformed request: " + ec.message() + "\n"));
    }

    bool origin_allowed(const http::request<http::string_body>& req) const {
        const auto& allowed = context_.options.allowed_origins;
        if (allowed.empty()) return true;
        const auto origin = req[http::field::origin];
        return std::find(allowed.begin(), allowed.end(), std::string(origin)) != allowed.end();
    }

    bool token_valid(const http::request<http::string_body>& req, std::string_view target) const {
        const std::string& token = context_.options.token;
        if (token.empty()) return true;
        std::string offered;
        const auto auth = req[http::field::authorization];
        if (auth.starts_with("Bearer ")) offered = std::string(auth.substr(7));
        if (const auto at = target.find("token="); offered.empty() && at != std::string_view::npos)
            offered = std::string(target.substr(at + 6, target.find('&', at) - at - 6));
        // Compare in constant time: the token is a shared secret.
        unsigned char diff = offered.size() != token.size();
        for (std::size_t i = 0; i < token.size(); ++i)
            diff |= static_cast<unsigned char>(token[i] ^ (i < offered.size() ? offered[i] : 0));
        return diff == 0;
    }

    http::response<http::string_body> route(const http::request<http::string_body>& req) {
        if (req.method() != http::verb::get && req.method() != http::verb::head)
            return respond(req, http::status::method_not_allowed, "only GET\n");
        const AdminState state{context_.metrics, context_.ready, [this] { return context_.draining.load(); },
                               "redis not subscribed"};
        if (auto reply = admin_route(req.target(), state))
            return respond(req, static_cast<http::status>(reply->status), std::move(reply->body),
                           reply->content_type.c_str());
        const std::string_view target = req.target();
        if (const auto file = context_.static_files.find(std::string(target.substr(0, target.find('?'))));
            file != context_.static_files.end()) {
            auto res = respond(req, http::status::ok, file->second.body, file->second.content_type.c_str());
            res.set(http::field::cache_control, "public, max-age=300");
            set_page_security_headers(res);
            return res;
        }
        return respond(req, http::status::not_found, "not found\n");
    }

    void send(http::response<http::string_body> res) {
        auto response = std::make_shared<http::response<http::string_body>>(std::move(res));
        http::async_write(stream_, *response, [self = shared_from_this(), response](beast::error_code ec, std::size_t) {
            if (ec) return;
            if (!response->keep_alive()) return self->linger_close();
            self->read();
        });
    }

    // After the last response: stop sending, then read and discard what the client is
    // still sending for a moment before closing. Closing with unread bytes would reset
    // the connection, and a reset can destroy the response before the client reads it
    // (as nginx's lingering_close avoids).
    void linger_close() {
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        stream_.expires_after(2s);
        discard_input();
    }

    void discard_input() {
        if (discarded_ > 1024 * 1024) return;  // enough courtesy
        stream_.async_read_some(net::buffer(scratch_), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
            self->discarded_ += n;
            if (!ec) self->discard_input();
        });
    }

    beast::tcp_stream stream_;
    const std::size_t loop_;
    HttpContext& context_;
    std::shared_ptr<std::atomic<std::size_t>> open_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    std::array<char, 4096> scratch_;
    std::size_t discarded_ = 0;
};

// 503 to a connection we will not serve, written without waiting (it is short and
// goes into an empty socket buffer); then the socket closes.
void refuse_at_once(int fd) {
    static constexpr std::string_view busy =
        "HTTP/1.1 503 Service Unavailable\r\nServer: birdwatch-fanout\r\nContent-Type: text/plain\r\n"
        "Connection: close\r\nRetry-After: 5\r\nContent-Length: 37\r\n\r\ntoo many connections on this replica\n";
    if (fd < 0) return;
    [[maybe_unused]] const ssize_t n = ::send(fd, busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    ::close(fd);
}

Counter& upgrades_refused(MetricsRegistry& metrics, const std::string& reason) {
    return metrics.counter("birdwatch_fanout_upgrades_refused_total", "WebSocket upgrades refused",
                           "reason=\"" + reason + "\"");
}

Counter& http_refused(MetricsRegistry& metrics, const std::string& reason) {
    return metrics.counter("birdwatch_fanout_http_refused_total", "HTTP requests refused", "reason=\"" + reason + "\"");
}

}  // namespace

struct Server::Impl {
    Impl(ServerOptions opts, IoPool& pool, Hub& hub, StoreReader* store, MetricsRegistry& metrics,
         std::function<bool()> ready)
        : options(std::move(opts)),
          loops(pool),
          static_files(load_static_files(options.static_dir)),
          refused_capacity(upgrades_refused(metrics, "capacity")),
          refused_origin(upgrades_refused(metrics, "origin")),
          refused_token(upgrades_refused(metrics, "token")),
          header_too_large(http_refused(metrics, "header_too_large")),
          body_too_large(http_refused(metrics, "body_too_large")),
          malformed(http_refused(metrics, "malformed")),
          refused_descriptors(upgrades_refused(metrics, "descriptors")),
          sessions(pool, hub, store, options.session, metrics),
          context{static_files,     hub,           options,   refused_capacity, refused_origin,
                  refused_token,    header_too_large, body_too_large, malformed, http_connections,
                  metrics,          std::move(ready), draining, sessions},
          acceptor(loops.context(0)),
          accept_pause(loops.context(0)),
          log(make_logger("server")),
          accepted(metrics.counter("birdwatch_fanout_accepted_total", "TCP connections accepted")),
          fd_exhausted(metrics.counter("birdwatch_fanout_accept_fd_exhausted_total",
                                       "Accepts that failed for want of file descriptors (accepting paused 100 ms)")) {
        spare_fd.open();
    }

    // Each connection goes to the next loop and stays there. Out of file descriptors,
    // accepting pauses (no spinning on a listen queue it cannot empty): the spare
    // descriptor is let go to take the waiting connections one by one and tell each
    // 503, then accepting resumes after a short pause.
    void accept() {
        const std::size_t loop = loops.next();
        acceptor.async_accept(loops.context(loop), [this, loop](beast::error_code ec, tcp::socket socket) {
            if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
            if (!ec) {
                accepted.inc();
                // Beyond the descriptor budget a connection is told 503 at once: the replica
                // never spends the descriptors it keeps for itself.
                if (context.hub.size() + http_connections->load(std::memory_order_relaxed) >= descriptor_budget) {
                    refused_descriptors.inc();
                    refuse_at_once(socket.release());
                    return accept();
                }
                // A tweet is pushed the moment it is queued, not held back for Nagle's algorithm.
                beast::error_code ignored;
                socket.set_option(tcp::no_delay(true), ignored);
                net::post(socket.get_executor(), [this, loop, socket = std::move(socket)]() mutable {
                    std::make_shared<HttpSession>(std::move(socket), loop, context)->run();
                });
                return accept();
            }
            if (ec == net::error::no_descriptors || ec.value() == ENFILE || ec == net::error::no_buffer_space ||
                ec == net::error::no_memory) {
                fd_exhausted.inc();
                if (first_error.first(ec.message()))
                    log->warn("msg=\"out of file descriptors, refusing connections until some close (logged once)\" "
                              "error={} max_connections={}", logfmt(ec.message()), options.max_connections);
                refuse_waiting();
                return pause_accepting();
            }
            if (first_error.first(ec.message()))
                log->warn("msg=\"accept failed (logged once per error)\" error={}", logfmt(ec.message()));
            accept();
        });
    }

    // Every connection waiting in the listen queue is taken in turn through the one
    // freed descriptor and told 503, so none of them hangs unanswered.
    void refuse_waiting() {
        spare_fd.reset();
        for (int fd; (fd = ::accept4(acceptor.native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0;) {
            refused_capacity.inc();
            refuse_at_once(fd);
        }
        spare_fd.open();
    }

    void pause_accepting() {
        accept_pause.expires_after(100ms);
        accept_pause.async_wait([this](beast::error_code ec) {
            if (!ec && acceptor.is_open()) accept();
        });
    }

    // One descriptor held in reserve, so that a replica out of descriptors can still
    // accept a connection to refuse it.
    struct SpareDescriptor {
        int fd = -1;
        void open() {
            if (fd < 0) fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        }
        void reset() {
            if (fd >= 0) ::close(fd);
            fd = -1;
        }
        ~SpareDescriptor() { reset(); }
    };

    ServerOptions options;
    IoPool& loops;
    StaticFiles static_files;
    Counter& refused_capacity;
    Counter& refused_origin;
    Counter& refused_token;
    Counter& header_too_large;
    Counter& body_too_large;
    Counter& malformed;
    Counter& refused_descriptors;
    std::atomic<bool> draining{false};
    std::shared_ptr<std::atomic<std::size_t>> http_connections = std::make_shared<std::atomic<std::size_t>>(0);
    std::size_t descriptor_budget = SIZE_MAX;
    unsigned short bound_port = 0;
    WebSocketSessions sessions;
    HttpContext context;
    tcp::acceptor acceptor;
    net::steady_timer accept_pause;
    SpareDescriptor spare_fd;
    std::shared_ptr<spdlog::logger> log;
    FirstOccurrence first_error;
    Counter& accepted;
    Counter& fd_exhausted;
};

Server::Server(ServerOptions options, IoPool& loops, Hub& hub, StoreReader* store, MetricsRegistry& metrics,
               std::function<bool()> ready)
    : impl_(std::make_unique<Impl>(std::move(options), loops, hub, store, metrics, std::move(ready))) {}

Server::~Server() = default;

// A replica needs a descriptor per connection: it takes the whole hard limit, keeps
// `reserved_descriptors` of them for itself (Redis, the store, logs), and says so when
// the rest is below max_connections. Returns how many client sockets it may hold.
static std::size_t client_descriptor_budget(const ServerOptions& options, spdlog::logger& log) {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return SIZE_MAX;
    if (limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
        getrlimit(RLIMIT_NOFILE, &limit);
    }
    if (limit.rlim_cur == RLIM_INFINITY) return SIZE_MAX;
    const std::size_t budget = limit.rlim_cur > options.reserved_descriptors ? limit.rlim_cur - options.reserved_descriptors : 0;
    if (budget < options.max_connections)
        log.warn("msg=\"the file descriptor limit is below websocket.max_connections; connections beyond it get 503\" "
                 "nofile={} reserved={} max_connections={} fix=\"raise LimitNOFILE (systemd) or ulimit -n\"",
                 static_cast<unsigned long long>(limit.rlim_cur), options.reserved_descriptors, options.max_connections);
    return budget;
}

void Server::start() {
    impl_->descriptor_budget = client_descriptor_budget(impl_->options, *impl_->log);
    const tcp::endpoint endpoint(net::ip::make_address(impl_->options.address), impl_->options.port);
    impl_->acceptor.open(endpoint.protocol());
    impl_->acceptor.set_option(net::socket_base::reuse_address(true));
    impl_->acceptor.bind(endpoint);
    impl_->acceptor.listen(net::socket_base::max_listen_connections);
    impl_->bound_port = impl_->acceptor.local_endpoint().port();
    impl_->accept();
    impl_->log->info("msg=\"listening\" address={} port={} loops={}", impl_->options.address, port(),
                     impl_->loops.size());
}

unsigned short Server::port() const { return impl_->bound_port; }

void Server::drain(std::chrono::milliseconds drain) {
    impl_->draining = true;
    net::post(impl_->acceptor.get_executor(), [this] {
        beast::error_code ignored;
        impl_->acceptor.close(ignored);
    });
    impl_->context.hub.close_all(1001);
    const auto deadline = std::chrono::steady_clock::now() + drain;
    while (impl_->context.hub.size() > 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(20ms);
}

}  // namespace birdwatch
