#pragma once
// Reads the text messages of one WebSocket connection (ws:// or wss://, TLS verified
// against the system's CAs) on the calling thread, until the peer closes, the network
// fails, nothing arrives for `stall_timeout`, or stop is requested. A message above
// `max_message_bytes` is read through and skipped, never held whole. Beast is confined
// to this file's .cpp: it is the one expensive TU of the ingest.

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

namespace birdwatch {

struct WebSocketUrl {
    bool tls = false;
    std::string host, port, path;  // path with its own query, if any
    // ws://host[:port]/path or wss://...; nullopt (with `error`) for anything else.
    static std::optional<WebSocketUrl> parse(std::string_view url, std::string& error);
};

struct WebSocketReadOptions {
    std::chrono::milliseconds connect_timeout{10000};
    std::chrono::milliseconds stall_timeout{30000};
    std::size_t max_message_bytes = 1 << 20;
    std::string ca_file;  // wss: PEM certificates trusted besides the system's (empty: the system's only)
};

struct WebSocketReadHandlers {
    std::function<void()> connected;                          // the upgrade succeeded
    std::function<void(std::string_view text)> message;       // a whole text message within the limit
    std::function<void(const char* why, std::size_t bytes)> skipped;  // "oversized" or "binary"
};

struct WebSocketReadEnd {
    enum class Kind { stopped, stalled, closed, network_error, refused };
    Kind kind = Kind::closed;
    int http_status = 0;  // refused: the status that declined the upgrade (0: none was read)
    std::string detail;
};

// `target` is the request target (path and query) sent in the upgrade request.
WebSocketReadEnd read_websocket(const WebSocketUrl& url, const std::string& target, const WebSocketReadOptions& options,
                                const WebSocketReadHandlers& handlers, std::stop_token stop);

}  // namespace birdwatch
