#include "ingest/stream/reconnect_policy.h"

namespace birdwatch {

ReconnectPolicy::ReconnectPolicy(std::chrono::milliseconds healthy_after) : healthy_after_(healthy_after) {}

void ReconnectPolicy::connected(Clock::time_point now) { connected_at_ = now; }

void ReconnectPolicy::reset_if_healthy(Clock::time_point now) {
    if (delivered_ || (connected_at_ && now - *connected_at_ >= healthy_after_)) {
        network_.reset();
        http_.reset();
        rate_limited_.reset();
    }
    connected_at_.reset();
    delivered_ = false;
}

std::chrono::milliseconds ReconnectPolicy::failed(Cause cause, Clock::time_point now) {
    reset_if_healthy(now);
    switch (cause) {
        case Cause::network:
        case Cause::stall: return network_.next();
        case Cause::http: return http_.next();
        case Cause::rate_limited: return rate_limited_.next();
    }
    return http_.next();
}

ReconnectPolicy::Cause ReconnectPolicy::classify_status(long status) {
    return status == 420 || status == 429 ? Cause::rate_limited : Cause::http;
}

}  // namespace birdwatch
