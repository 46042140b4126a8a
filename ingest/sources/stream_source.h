#pragma once
// A live Twitter/X stream, consumed with libcurl on the source's own thread:
//   x_v2: GET /2/tweets/search/stream with a bearer token (rules synchronised first)
//   x_v1: POST /1.1/statuses/filter.json with track/follow/locations, OAuth 1.0a signed
// Messages are reassembled by the Framer and handed to the pipeline's belt. Stalls
// (no byte, not even a keep-alive, for stall_timeout) and every kind of failure lead
// to a reconnect after the delay ReconnectPolicy gives for its cause; 401/403 end the
// source with a fatal error naming the credential.

#include "common/log.h"
#include "common/metrics.h"
#include "ingest/sources/source.h"
#include "ingest/stream/oauth1.h"
#include "ingest/stream/reconnect_policy.h"
#include "ingest/stream/rules_sync.h"

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace birdwatch {

struct StreamOptions {
    enum class Api { x_v2, x_v1 };
    Api api = Api::x_v2;
    std::string base_url;            // https://api.x.com (v2), https://stream.twitter.com (v1.1)
    std::string bearer_token;        // v2
    oauth1::Credentials oauth;       // v1.1
    std::vector<StreamRule> rules;   // v2: synchronised on start
    std::string track, follow, locations, language;  // v1.1 filter parameters (comma-separated)
    bool delimited = false;          // v1.1 delimited=length framing
    // Silence (not even a keep-alive) before reconnecting; 0: X's figure for the API
    // (v2 sends a keep-alive at least every 20 s and says to reconnect after 20 s; v1.1 90 s).
    std::chrono::milliseconds stall_timeout{0};
    std::chrono::milliseconds connect_timeout{10000};
    std::size_t max_message_bytes = 1 << 20;
};

class StreamSource final : public Source {
public:
    // Waits `delay` unless stop is requested first; returns false when stopped. Tests
    // substitute one that records the delay and returns at once.
    using Sleeper = std::function<bool(std::chrono::milliseconds delay, const std::stop_token& stop)>;
    static Sleeper real_sleeper();

    StreamSource(StreamOptions options, BoundedChannel<StreamLine>& out, MetricsRegistry& metrics,
                 Sleeper sleeper = real_sleeper());
    ~StreamSource() override { stop(); }

    // Set when the source ended because X rejected a credential (HTTP 401/403).
    const std::string& fatal_error() const { return fatal_error_; }

private:
    struct Attempt;
    void produce(std::stop_token stop) override;
    Attempt connect_once(const std::stop_token& stop);
    std::string credential_name() const;

    const StreamOptions options_;
    const std::chrono::milliseconds stall_timeout_;
    const Sleeper sleeper_;
    MetricsRegistry& metrics_;
    std::shared_ptr<spdlog::logger> log_;
    ReconnectPolicy policy_;
    std::string fatal_error_;
    std::atomic<std::int64_t> last_byte_ms_{0};
    std::atomic<std::int64_t> last_message_ms_{0};

    Counter& bytes_;
    Counter& messages_;
    Counter& keep_alives_;
    Counter& oversized_;
    Counter& connects_;
    Counter& reconnects_network_;
    Counter& reconnects_stall_;
    Counter& reconnects_http_;
    Counter& reconnects_rate_limited_;
};

}  // namespace birdwatch
