#pragma once
// The operational endpoints both daemons answer: /healthz, /readyz, /metrics.
// Transport-free, so each daemon's HTTP server routes to it.

#include "common/metrics.h"

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace birdwatch {

struct AdminReply {
    int status = 200;
    std::string content_type = "text/plain";
    std::string body;
};

struct AdminState {
    MetricsRegistry& metrics;
    std::function<bool()> ready;     // e.g. "Redis subscribed"
    std::function<bool()> draining;  // shutting down: not ready, whatever else holds
    std::string not_ready_reason = "not ready";
};

// The reply for `target`, or nothing when it is not an admin path.
std::optional<AdminReply> admin_route(std::string_view target, const AdminState& state);

}  // namespace birdwatch
