#pragma once
// A small HTTP server for a daemon's operational endpoints (admin_routes.h), on its
// own thread. The fanout serves these on its WebSocket port instead.

#include "common/admin_routes.h"

#include <memory>
#include <string>

namespace birdwatch {

class AdminServer {
public:
    AdminServer(std::string address, unsigned short port, AdminState state);
    ~AdminServer();
    // Throws std::system_error when the address cannot be bound.
    void start();
    unsigned short port() const;
    void stop();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace birdwatch
