#pragma once
// Bluesky's Jetstream (v1 /subscribe, JSON over WebSocket, no credentials) as a source:
// posts become tweets in our own published form, post deletes become delete notices,
// and every line carries the event's time_us as its position, so the journal can
// persist where the stream stands once what came before is durable.
//
// Resuming: a reconnect, or a restart from the persisted position, asks for
// cursor = position - rewind. Events at or before the position are dropped when the
// endpoint is the one that delivered it (time_us is that instance's own clock, strictly
// increasing); on another endpoint, whose clock differs, the remembered (did, rkey) of
// recent posts drops the repeats instead. After a restart nothing is remembered and the
// saved position does not say which instance it came from: the first endpoint that
// serves is taken to be that one. A connection that fails before it is up moves
// on to the next endpoint; once all have failed, the next round waits for the backoff.

#include "common/log.h"
#include "common/metrics.h"
#include "ingest/jetstream/mapper.h"
#include "ingest/jetstream/websocket_reader.h"
#include "ingest/sources/source.h"
#include "ingest/stream/reconnect_policy.h"

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace birdwatch {

struct JetstreamOptions {
    std::vector<std::string> endpoints;    // ws:// or wss:// URLs of /subscribe, tried in order
    std::vector<std::string> wanted_dids;  // empty: every author
    std::chrono::milliseconds rewind{5000};
    std::chrono::milliseconds stall_timeout{30000};
    std::chrono::milliseconds connect_timeout{10000};
    std::size_t max_message_bytes = 1 << 20;
    std::size_t remember_posts = 100000;
    std::string ca_file;  // wss: extra trusted CA certificates (PEM)
};

class JetstreamSource final : public Source {
public:
    // Throws ConfigError for an endpoint that is not a ws:// or wss:// URL.
    JetstreamSource(JetstreamOptions options, BoundedChannel<StreamLine>& out, MetricsRegistry& metrics);
    ~JetstreamSource() override { stop(); }

    void resume_after(std::int64_t position) override;

    // The request target for an endpoint's path given the cursor (0: none): for tests and logs.
    std::string target(const std::string& path, std::int64_t cursor) const;

private:
    void produce(std::stop_token stop) override;
    void handle(std::string_view frame);
    bool on_position_clock() const { return !position_endpoint_ || *position_endpoint_ == endpoint_; }

    const JetstreamOptions options_;
    std::vector<WebSocketUrl> endpoints_;
    std::shared_ptr<spdlog::logger> log_;
    FirstOccurrence first_;
    JetstreamMapper mapper_;
    ReconnectPolicy policy_;
    std::size_t endpoint_ = 0;            // the one in use or tried next
    std::optional<std::size_t> position_endpoint_;  // the one whose clock `position_` is on; unknown after a restart
    std::int64_t handled_through_ = 0;    // events at or before it are dropped (same endpoint only)
    std::atomic<std::int64_t> position_{0};  // time_us of the last event handled
    std::atomic<std::int64_t> last_event_ms_{0};
    std::atomic<std::size_t> remembered_{0}, handles_{0};

    Counter& bytes_;
    Counter& connects_;
    Counter& failovers_;
    LabelledCounters events_, repeats_, skipped_, reconnects_;
};

}  // namespace birdwatch
