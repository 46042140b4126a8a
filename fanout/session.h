#pragma once
// WebSocket client connections, RFC 6455 spoken directly on the socket
// (fanout/websocket_codec.h). Each session is a transport -- its socket and one
// bounded OutputBuffer through which every byte it sends leaves, reading paused
// while that buffer is above its high watermark -- and a protocol part that acts on
// the typed requests fanout/client_protocol.h made of the client's messages.
// Everything a session does runs on its loop of the IoPool.

#include "common/metrics.h"
#include "fanout/hub.h"
#include "fanout/io_pool.h"
#include "fanout/store_reader.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string_view>

namespace birdwatch {

struct SessionOptions {
    std::size_t max_message_bytes = 16 * 1024;       // incoming
    std::size_t max_queue_bytes = 4 * 1024 * 1024;   // outgoing, per connection: the OutputBuffer's cap
    std::size_t max_subscriptions = 16;              // per connection
    std::size_t max_page = 100;                      // history: largest `size`
    double messages_per_second = 20;                 // per connection, token bucket...
    double message_burst = 40;                       // ...of this depth
    std::size_t error_budget = 50;                   // error replies before the connection is closed (1008)
    std::chrono::milliseconds slow_close_after{10000};  // above the high watermark this long: reset
    std::chrono::milliseconds idle_timeout{300000};  // silence before closing; pinged at half of it
    std::chrono::milliseconds close_timeout{5000};   // after our close frame, how long to wait for the client's
    bool permessage_deflate = true;                  // accept a client's offer (tweets compressed once per batch)
    std::size_t own_compressors = 1000;              // connections that may get a small-window compressor of their own
};

// The sessions of every loop, with what each loop shares among its own: a read
// buffer, write scratch, traffic counters and one timer for idle and close deadlines.
class WebSocketSessions {
public:
    WebSocketSessions(IoPool& loops, Hub& hub, StoreReader* store, const SessionOptions& options,
                      MetricsRegistry& metrics);
    ~WebSocketSessions();

    // On loop `loop`'s thread: answers the upgrade request (101, or 400/426 when it is
    // not a valid RFC 6455 handshake) and runs the session until either side closes it.
    // `early` holds any bytes the client sent after its request. `store` may be null
    // (no store configured): history, resume and get then answer `no_store`.
    void start(boost::asio::ip::tcp::socket socket, std::size_t loop,
               const boost::beast::http::request<boost::beast::http::string_body>& upgrade, std::string_view early);

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace birdwatch
