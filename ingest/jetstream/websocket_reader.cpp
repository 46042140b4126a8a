#include "ingest/jetstream/websocket_reader.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <openssl/ssl.h>

namespace birdwatch {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto nothrow = net::as_tuple(net::use_awaitable);
constexpr std::size_t read_chunk = 64 * 1024;
constexpr std::uint64_t hard_message_limit = 64ull << 20;  // beyond this the peer is not a Jetstream: hang up

struct Run {
    Run(const WebSocketUrl& url_, const std::string& target_, const WebSocketReadOptions& options_,
        const WebSocketReadHandlers& handlers_)
        : url(url_), target(target_), options(options_), handlers(handlers_) {}

    const WebSocketUrl& url;
    const std::string& target;
    const WebSocketReadOptions& options;
    const WebSocketReadHandlers& handlers;
    net::io_context io;
    tcp::resolver resolver{io};
    net::steady_timer stall_timer{io};
    WebSocketReadEnd end;
    bool connecting = true;
    bool stopping = false;
    bool stalled = false;
    Clock::time_point last_activity = Clock::now();

    template <class Socket>
    void hang_up(Socket& socket) {
        beast::error_code ignored;
        socket.close(ignored);
        resolver.cancel();
        stall_timer.cancel();
    }
};

WebSocketReadEnd::Kind kind_of(const Run& run, beast::error_code ec) {
    if (run.stopping) return WebSocketReadEnd::Kind::stopped;
    if (run.stalled) return WebSocketReadEnd::Kind::stalled;
    if (ec == websocket::error::closed) return WebSocketReadEnd::Kind::closed;
    return WebSocketReadEnd::Kind::network_error;
}

// Nothing for stall_timeout (connecting included: connect_timeout bounds that part) ends the connection.
template <class Socket>
net::awaitable<void> watch_stall(Run& run, Socket& socket) {
    while (!run.stopping) {
        const auto limit = run.connecting ? run.options.connect_timeout : run.options.stall_timeout;
        const auto due = run.last_activity + limit;
        if (Clock::now() >= due) {
            run.stalled = true;
            run.hang_up(socket);
            co_return;
        }
        run.stall_timer.expires_at(due);
        co_await run.stall_timer.async_wait(nothrow);
    }
}

template <class Ws>
net::awaitable<void> session(Run& run, Ws& ws) {
    auto& socket = beast::get_lowest_layer(ws).socket();
    net::co_spawn(run.io, watch_stall(run, socket), net::detached);
    const auto finish = [&](WebSocketReadEnd::Kind kind, std::string detail) {
        run.end.kind = kind;
        run.end.detail = std::move(detail);
        run.stopping = true;  // ends the stall watch
        run.hang_up(socket);
    };

    auto [resolve_ec, endpoints] = co_await run.resolver.async_resolve(run.url.host, run.url.port, nothrow);
    if (resolve_ec) co_return finish(kind_of(run, resolve_ec), "cannot resolve " + run.url.host + ": " + resolve_ec.message());
    auto [connect_ec, connected_to] = co_await beast::get_lowest_layer(ws).async_connect(endpoints, nothrow);
    if (connect_ec) co_return finish(kind_of(run, connect_ec), "cannot connect: " + connect_ec.message());

    if constexpr (!std::is_same_v<typename Ws::next_layer_type, beast::tcp_stream>) {
        if (!SSL_set_tlsext_host_name(ws.next_layer().native_handle(), run.url.host.c_str()))
            co_return finish(WebSocketReadEnd::Kind::network_error, "cannot set the TLS server name");
        ws.next_layer().set_verify_callback(net::ssl::host_name_verification(run.url.host));
        auto [tls_ec] = co_await ws.next_layer().async_handshake(net::ssl::stream_base::client, nothrow);
        if (tls_ec) co_return finish(kind_of(run, tls_ec), "TLS handshake failed: " + tls_ec.message());
    }

    ws.set_option(websocket::stream_base::decorator([](websocket::request_type& request) {
        request.set(beast::http::field::user_agent, "birdwatch/0.1");
    }));
    ws.read_message_max(hard_message_limit);
    websocket::response_type response;
    auto [upgrade_ec] = co_await ws.async_handshake(response, run.url.host, run.target, nothrow);
    if (upgrade_ec) {
        run.end.http_status = static_cast<int>(response.result_int());
        const bool declined = upgrade_ec == websocket::error::upgrade_declined;
        co_return finish(declined && !run.stalled && !run.stopping ? WebSocketReadEnd::Kind::refused
                                                                    : kind_of(run, upgrade_ec),
                         "upgrade failed: " + upgrade_ec.message() + " (HTTP " + std::to_string(run.end.http_status) +
                             ")");
    }
    run.connecting = false;
    run.last_activity = Clock::now();
    if (run.handlers.connected) run.handlers.connected();

    beast::flat_buffer buffer;
    std::string message;
    std::size_t message_bytes = 0;
    bool oversized = false;
    while (true) {
        auto [read_ec, n] = co_await ws.async_read_some(buffer, read_chunk, nothrow);
        if (read_ec) co_return finish(kind_of(run, read_ec), read_ec == websocket::error::closed
                                                                 ? "closed by the server"
                                                                 : read_ec.message());
        message_bytes += n;
        if (!oversized && message.size() + n > run.options.max_message_bytes) {
            oversized = true;
            message.clear();
            message.shrink_to_fit();
        }
        if (!oversized) message.append(static_cast<const char*>(buffer.cdata().data()), n);
        buffer.consume(n);
        if (ws.is_message_done()) {
            if (ws.got_binary()) run.handlers.skipped("binary", message_bytes);
            else if (oversized) run.handlers.skipped("oversized", message_bytes);
            else run.handlers.message(message);  // may block (a full belt): the stall clock starts after it
            message.clear();
            message_bytes = 0;
            oversized = false;
        }
        run.last_activity = Clock::now();
    }
}

}  // namespace

std::optional<WebSocketUrl> WebSocketUrl::parse(std::string_view url, std::string& error) {
    WebSocketUrl parsed;
    if (url.starts_with("wss://")) {
        parsed.tls = true;
        url.remove_prefix(6);
    } else if (url.starts_with("ws://")) {
        url.remove_prefix(5);
    } else {
        error = "a Jetstream endpoint must start with ws:// or wss://";
        return std::nullopt;
    }
    const std::size_t slash = url.find('/');
    const std::string_view authority = url.substr(0, slash);
    parsed.path = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
    const std::size_t colon = authority.rfind(':');
    const bool bracketed = authority.starts_with('[');
    if (colon != std::string_view::npos && (!bracketed || authority[colon - 1] == ']')) {
        parsed.host = authority.substr(0, colon);
        parsed.port = authority.substr(colon + 1);
    } else {
        parsed.host = authority;
        parsed.port = parsed.tls ? "443" : "80";
    }
    if (bracketed && parsed.host.size() >= 2) parsed.host = parsed.host.substr(1, parsed.host.size() - 2);
    if (parsed.host.empty() || parsed.port.empty() ||
        parsed.port.find_first_not_of("0123456789") != std::string::npos) {
        error = "cannot read host and port from the endpoint";
        return std::nullopt;
    }
    return parsed;
}

WebSocketReadEnd read_websocket(const WebSocketUrl& url, const std::string& target, const WebSocketReadOptions& options,
                                const WebSocketReadHandlers& handlers, std::stop_token stop) {
    Run run{url, target, options, handlers};
    std::optional<net::ssl::context> tls;
    std::optional<websocket::stream<beast::tcp_stream>> plain;
    std::optional<websocket::stream<beast::ssl_stream<beast::tcp_stream>>> secure;
    if (url.tls) {
        tls.emplace(net::ssl::context::tls_client);
        tls->set_default_verify_paths();
        tls->set_verify_mode(net::ssl::verify_peer);
        beast::error_code ec;
        if (!options.ca_file.empty()) tls->load_verify_file(options.ca_file, ec);
        if (ec)
            return {WebSocketReadEnd::Kind::network_error, 0, "cannot load " + options.ca_file + ": " + ec.message()};
        secure.emplace(run.io, *tls);
        net::co_spawn(run.io, session(run, *secure), net::detached);
    } else {
        plain.emplace(run.io);
        net::co_spawn(run.io, session(run, *plain), net::detached);
    }
    std::stop_callback on_stop(stop, [&] {
        net::post(run.io, [&] {
            run.stopping = true;
            if (plain) run.hang_up(beast::get_lowest_layer(*plain).socket());
            if (secure) run.hang_up(beast::get_lowest_layer(*secure).socket());
        });
    });
    run.io.run();
    if (stop.stop_requested()) run.end.kind = WebSocketReadEnd::Kind::stopped;
    return run.end;
}

}  // namespace birdwatch
