#pragma once
// How long to wait before reconnecting, by cause, as X documents for its streams
// (and as twitter/hbc implements it):
//   TCP/IP errors and stalls: linear, +250 ms per attempt, up to 16 s
//   HTTP errors:              exponential from 5 s, up to 320 s
//   HTTP 420 / 429:           exponential from 60 s (capped at 960 s here)
//   HTTP 401 / 403:           fatal: a credential is wrong, retrying cannot help
// Every schedule restarts once a connection has delivered a message, or stayed up for
// `healthy_after`: a stream cut after it worked is reconnected at once (250 ms) whatever
// failed before, while failures that repeat without any data keep growing. Pure
// arithmetic over the times it is given, so tests check schedules without sleeping.

#include "common/backoff.h"

#include <chrono>
#include <optional>

namespace birdwatch {

class ReconnectPolicy {
public:
    using Clock = std::chrono::steady_clock;
    enum class Cause { network, stall, http, rate_limited };

    explicit ReconnectPolicy(std::chrono::milliseconds healthy_after = std::chrono::seconds(60));

    // The connection was established (HTTP 200) at `now`.
    void connected(Clock::time_point now);
    // It delivered a message (not a keep-alive).
    void delivered() { delivered_ = true; }
    // It ended for `cause` at `now`: the delay before the next attempt.
    std::chrono::milliseconds failed(Cause cause, Clock::time_point now);

    static Cause classify_status(long http_status);           // 420/429 -> rate_limited, else http
    static bool is_fatal_status(long http_status) { return http_status == 401 || http_status == 403; }

private:
    void reset_if_healthy(Clock::time_point now);

    std::chrono::milliseconds healthy_after_;
    std::optional<Clock::time_point> connected_at_;
    bool delivered_ = false;
    Backoff network_{std::chrono::milliseconds(250), std::chrono::seconds(16), Backoff::Growth::linear};
    Backoff http_{std::chrono::seconds(5), std::chrono::seconds(320), Backoff::Growth::exponential};
    Backoff rate_limited_{std::chrono::seconds(60), std::chrono::seconds(960), Backoff::Growth::exponential};
};

}  // namespace birdwatch
