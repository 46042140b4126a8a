#include "ingest/sources/jetstream_source.h"

#include "common/clock.h"
#include "common/config.h"


namespace birdwatch {

namespace {

const char* end_name(WebSocketReadEnd::Kind kind) {
    switch (kind) {
        case WebSocketReadEnd::Kind::stopped: return "stopped";
        case WebSocketReadEnd::Kind::stalled: return "stall";
        case WebSocketReadEnd::Kind::closed: return "closed";
        case WebSocketReadEnd::Kind::network_error: return "network";
        case WebSocketReadEnd::Kind::refused: return "refused";
    }
    return "network";
}

}  // namespace

JetstreamSource::JetstreamSource(JetstreamOptions options, BoundedChannel<StreamLine>& out, MetricsRegistry& metrics)
    : Source(out),
      options_(std::move(options)),
      log_(make_logger("jetstream")),
      mapper_(options_.remember_posts),
      bytes_(metrics.counter("birdwatch_jetstream_bytes_total", "Bytes of the text messages received from Jetstream")),
      connects_(metrics.counter("birdwatch_jetstream_connects_total", "Jetstream connections established")),
      failovers_(metrics.counter("birdwatch_jetstream_failovers_total",
                                 "Moves to the next configured endpoint after one failed to connect")),
      events_(metrics, "birdwatch_jetstream_events_total", "Jetstream events by what they were", "kind"),
      repeats_(metrics, "birdwatch_jetstream_repeats_total",
               "Events dropped as handled already: re-sent after a rewind, or a post remembered", "why"),
      skipped_(metrics, "birdwatch_jetstream_skipped_total", "Jetstream messages skipped as unusable, by reason",
               "reason"),
      reconnects_(metrics, "birdwatch_jetstream_reconnects_total", "Jetstream reconnects by cause", "cause") {
    if (options_.endpoints.empty()) throw ConfigError("source.jetstream.endpoints: at least one endpoint is needed");
    for (const std::string& endpoint : options_.endpoints) {
        std::string error;
        auto url = WebSocketUrl::parse(endpoint, error);
        if (!url) throw ConfigError("source.jetstream.endpoints: '" + endpoint + "': " + error);
        endpoints_.push_back(std::move(*url));
    }
    metrics.gauge_fn("birdwatch_jetstream_position_us", "time_us of the last Jetstream event handled (the cursor)",
                     [this] { return static_cast<double>(position_.load()); });
    metrics.gauge_fn("birdwatch_jetstream_seconds_since_last_event", "Seconds since the last event (-1: never)", [this] {
        const std::int64_t at = last_event_ms_.load();
        return at == 0 ? -1.0 : static_cast<double>(now_epoch_ms() - at) / 1000.0;
    });
    metrics.gauge_fn("birdwatch_jetstream_remembered_posts",
                     "Recent posts remembered for deletes, quotes, replies and repeats (bounded by remember_posts)",
                     [this] { return static_cast<double>(remembered_.load()); });
    metrics.gauge_fn("birdwatch_jetstream_known_handles", "Handles learnt from identity events (bounded)",
                     [this] { return static_cast<double>(handles_.load()); });
}

void JetstreamSource::resume_after(std::int64_t position) {
    if (position <= 0) return;
    position_ = position;
    handled_through_ = position;
    position_endpoint_.reset();
}

std::string JetstreamSource::target(const std::string& path, std::int64_t cursor) const {
    std::string target = path;
    target += path.find('?') == std::string::npos ? '?' : '&';
    target += "wantedCollections=app.bsky.feed.post";
    for (const std::string& did : options_.wanted_dids) target += "&wantedDids=" + did;
    target += "&maxMessageSizeBytes=" + std::to_string(options_.max_message_bytes);
    if (cursor > 0) target += "&cursor=" + std::to_string(cursor);
    return target;
}

void JetstreamSource::handle(std::string_view frame) {
    const std::int64_t received_us = now_epoch_us();
    bytes_.inc(frame.size());
    last_event_ms_ = received_us / 1000;
    policy_.delivered();
    JetstreamEvent event = mapper_.map(frame, on_position_clock() ? handled_through_ : 0);
    remembered_ = mapper_.remembered_posts();
    handles_ = mapper_.known_handles();
    if (event.time_us > position_) {
        position_ = event.time_us;
        position_endpoint_ = endpoint_;
    }
    switch (event.kind) {
        case JetstreamEvent::Kind::post:
        {
            events_["post"].inc();
            std::string line;
            append_tweet_json(line, event.tweet);
            out_.push(StreamLine{std::move(line), received_us, event.time_us});  // blocks while the pipeline lags
            return;
        }
        case JetstreamEvent::Kind::post_delete:
            events_["post_delete"].inc();
            out_.push(StreamLine{delete_notice_json(event.deleted_id), received_us, event.time_us});
            return;
        case JetstreamEvent::Kind::repeat:
            repeats_[event.detail].inc();
            return;
        case JetstreamEvent::Kind::ignored:
            events_[event.detail].inc();
            if (first_.first(std::string("ignored:") + event.detail))
                log_->info("msg=\"event not stored (first of its kind; counted)\" kind={} frame={}", event.detail,
                           logfmt(frame.substr(0, 200)));
            return;
        case JetstreamEvent::Kind::malformed:
            skipped_[event.detail].inc();
            if (first_.first(std::string("malformed:") + event.detail))
                log_->warn("msg=\"skipping a malformed Jetstream message (logged once per reason)\" reason={} frame={}",
                           logfmt(event.detail), logfmt(frame.substr(0, 200)));
            return;
    }
}

void JetstreamSource::produce(std::stop_token stop) {
    const WebSocketReadOptions read_options{options_.connect_timeout, options_.stall_timeout, options_.max_message_bytes,
                                            options_.ca_file};
    std::size_t failed_in_a_row = 0;  // attempts that never got connected, across endpoints
    while (!stop.stop_requested()) {
        const WebSocketUrl& url = endpoints_[endpoint_];
        const std::int64_t rewind_us = static_cast<std::int64_t>(options_.rewind.count()) * 1000;
        const std::int64_t cursor = position_ > 0 ? std::max<std::int64_t>(1, position_ - rewind_us) : 0;
        const std::string request = target(url.path, cursor);
        bool connected = false;
        const WebSocketReadHandlers handlers{
            [&] {
                connected = true;
                connects_.inc();
                policy_.connected(ReconnectPolicy::Clock::now());
                log_->info("msg=\"connected to Jetstream\" endpoint={} cursor={} handled_through={}",
                           logfmt(options_.endpoints[endpoint_]), cursor,
                           on_position_clock() ? handled_through_ : 0);
            },
            [&](std::string_view text) { handle(text); },
            [&](const char* why, std::size_t bytes) {
                skipped_[why].inc();
                if (first_.first(std::string("frame:") + why))
                    log_->warn("msg=\"skipping a Jetstream message (logged once per reason)\" reason={} bytes={} limit={}",
                               why, bytes, options_.max_message_bytes);
            }};
        log_->info("msg=\"connecting to Jetstream\" endpoint={} target={}", logfmt(options_.endpoints[endpoint_]),
                   logfmt(request));
        const WebSocketReadEnd end = read_websocket(url, request, read_options, handlers, stop);
        if (end.kind == WebSocketReadEnd::Kind::stopped || stop.stop_requested()) return;
        // Same-endpoint resumes drop what they re-send by time_us; from here on that is the last event handled.
        if (on_position_clock()) handled_through_ = position_;
        reconnects_[end_name(end.kind)].inc();
        const auto cause = end.kind == WebSocketReadEnd::Kind::refused
                               ? ReconnectPolicy::classify_status(end.http_status)
                           : end.kind == WebSocketReadEnd::Kind::stalled ? ReconnectPolicy::Cause::stall
                                                                         : ReconnectPolicy::Cause::network;
        const auto delay = policy_.failed(cause, ReconnectPolicy::Clock::now());
        if (connected) {
            failed_in_a_row = 0;
        } else if (++failed_in_a_row % endpoints_.size() != 0) {
            log_->warn("msg=\"Jetstream endpoint failed, trying the next\" endpoint={} cause={} detail={}",
                       logfmt(options_.endpoints[endpoint_]), end_name(end.kind), logfmt(end.detail));
            endpoint_ = (endpoint_ + 1) % endpoints_.size();
            failovers_.inc();
            continue;
        } else if (endpoints_.size() > 1) {
            endpoint_ = (endpoint_ + 1) % endpoints_.size();
            failovers_.inc();
        }
        log_->warn("msg=\"Jetstream connection ended, reconnecting\" cause={} detail={} delay_ms={} next={}",
                   end_name(end.kind), logfmt(end.detail), delay.count(), logfmt(options_.endpoints[endpoint_]));
        if (!sleep_unless_stopped(delay, stop)) return;
    }
}

}  // namespace birdwatch
