#include "common/admin_routes.h"

namespace birdwatch {

std::optional<AdminReply> admin_route(std::string_view target, const AdminState& state) {
    if (target == "/healthz") return AdminReply{200, "text/plain", "ok\n"};
    if (target == "/readyz") {
        const bool draining = state.draining && state.draining();
        const bool ready = !draining && (!state.ready || state.ready());
        return AdminReply{ready ? 200 : 503, "text/plain",
                          draining ? "draining\n" : ready ? "ready\n" : state.not_ready_reason + "\n"};
    }
    if (target == "/metrics")
        return AdminReply{200, "text/plain; version=0.0.4; charset=utf-8", state.metrics.render_prometheus()};
    return std::nullopt;
}

}  // namespace birdwatch
