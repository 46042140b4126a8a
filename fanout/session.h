#pragma once
// A WebSocket client connection. Only session.cpp includes Beast's websocket
// headers: that translation unit is the expensive one to compile.

#include "common/metrics.h"
#include "fanout/hub.h"
#include "fanout/store_reader.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <cstddef>

namespace birdwatch {

struct SessionOptions {
    std::size_t max_message_bytes = 16 * 1024;       // incoming
    std::size_t max_queue_bytes = 4 * 1024 * 1024;   // outgoing, per connection
    std::size_t max_subscriptions = 16;              // per connection
    double messages_per_second = 20;                 // per connection, token bucket...
    double message_burst = 40;                       // ...of this depth
    std::size_t error_budget = 50;                   // error replies before the connection is closed (1008)
    std::chrono::milliseconds slow_close_after{10000};  // over max_queue_bytes this long: closed (1013)
    std::chrono::milliseconds idle_timeout{300000};  // silence before closing; pinged at half of it
};

struct SessionMetrics {
    explicit SessionMetrics(MetricsRegistry& metrics);
    Counter& frames_sent;
    Counter& bytes_sent;
    Counter& frames_dropped;
    Counter& messages_received;
    Counter& client_errors;
    Counter& rate_limited;
    Counter& budget_closes;
    Counter& slow_closes;
    Gauge& queued_bytes;
};

// Completes the WebSocket handshake for an upgrade request and runs the session
// until either side closes it, on loop `loop` of the IoPool (the socket's own).
// `store` may be null (no store configured): history, resume and get then answer `no_store`.
void start_websocket_session(boost::asio::ip::tcp::socket socket, std::size_t loop,
                             boost::beast::http::request<boost::beast::http::string_body> upgrade, Hub& hub,
                             StoreReader* store, const SessionOptions& options, SessionMetrics& metrics);

}  // namespace birdwatch
