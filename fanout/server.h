#pragma once
// Accepts TCP connections, answers the operational HTTP endpoints, and hands
// `GET /ws` upgrades to WebSocket sessions, spreading connections over the loops
// of an IoPool (which the caller starts and stops).

#include "common/metrics.h"
#include "fanout/hub.h"
#include "fanout/io_pool.h"
#include "fanout/session.h"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace birdwatch {

struct ServerOptions {
    std::string address = "127.0.0.1";
    unsigned short port = 8080;
    std::size_t max_connections = 10000;
    std::vector<std::string> allowed_origins;  // empty: any Origin
    std::string token;                         // when set, upgrades need "Authorization: Bearer <token>" or ?token=
    std::string static_dir;                    // the web client's files, served at / (empty: none)
    std::size_t max_header_bytes = 8192;       // request line + headers; beyond: 431
    std::size_t max_body_bytes = 16384;        // beyond: 413
    std::size_t reserved_descriptors = 64;     // of RLIMIT_NOFILE, never spent on client sockets
    SessionOptions session;
};

class Server {
public:
    // `ready` answers /readyz (e.g. "Redis subscription active"); `store` may be null.
    Server(ServerOptions options, IoPool& loops, Hub& hub, StoreReader* store, MetricsRegistry& metrics,
           std::function<bool()> ready);
    ~Server();

    // Loads the static files, binds and starts accepting (once the loops run); throws
    // std::runtime_error / std::system_error if the directory cannot be read or the
    // address cannot be bound.
    void start();
    unsigned short port() const;
    // Stops accepting, fails /readyz, closes clients with 1001 (going away), and
    // waits up to `drain` for them to leave.
    void drain(std::chrono::milliseconds drain);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace birdwatch
