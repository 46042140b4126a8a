#include "ingest/pipeline.h"

#include "common/protocol.h"

#include <fmt/format.h>

namespace birdwatch {

Pipeline::Pipeline(const PipelineOptions& options, BoundedChannel<StreamLine>& in, BoundedChannel<std::string>& out,
                   MetricsRegistry& metrics)
    : options_(options),
      in_(in),
      out_(out),
      metrics_(metrics),
      log_(make_logger("pipeline")),
      lines_(metrics.counter("birdwatch_ingest_lines_total", "Stream lines received from the source")),
      tweets_parsed_(metrics.counter("birdwatch_ingest_tweets_total", "Tweets parsed from the stream")),
      keep_alives_(metrics.counter("birdwatch_ingest_keepalives_total", "Blank keep-alive lines")),
      oversized_(metrics.counter("birdwatch_ingest_skipped_lines_total", "Lines skipped as unusable",
                                 R"(reason="oversized")")) {
    metrics.gauge_fn("birdwatch_ingest_queue_depth", "Lines waiting for the pipeline",
                     [this] { return static_cast<double>(in_.size()); });
}

Pipeline::~Pipeline() {
    if (thread_.joinable()) thread_.join();
}

void Pipeline::start() { thread_ = std::thread([this] { run(); }); }

void Pipeline::join() {
    if (thread_.joinable()) thread_.join();
}

void Pipeline::run() {
    while (auto line = in_.pop()) handle(*line);
    out_.close();
}

Counter& Pipeline::labelled(std::unordered_map<const char*, Counter*>& cache, const char* name, const char* help,
                           const char* label, const char* value) {
    // `value` is always a static string from the parser, so its address is a stable key.
    auto [it, inserted] = cache.try_emplace(value, nullptr);
    if (inserted) it->second = &metrics_.counter(name, help, fmt::format("{}=\"{}\"", label, value));
    return *it->second;
}

void Pipeline::handle(const StreamLine& line) {
    lines_.inc();
    if (line.bytes.size() > options_.max_line_bytes) {
        oversized_.inc();
        if (first_.first("oversized"))
            log_->warn("msg=\"skipping oversized line (logged once)\" bytes={} limit={}", line.bytes.size(),
                       options_.max_line_bytes);
        return;
    }
    tweets_.clear();
    const ParseOutcome outcome = parser_.parse(line.bytes, tweets_);
    switch (outcome.kind) {
        case ParseOutcome::Kind::blank:
            keep_alives_.inc();
            return;
        case ParseOutcome::Kind::control:
            labelled(control_counters_, "birdwatch_ingest_control_messages_total",
                     "Control messages (not tweets) by kind", "kind", outcome.detail)
                .inc();
            if (first_.first(std::string("control:") + outcome.detail))
                log_->info("msg=\"control message (first of its kind)\" kind={} line=\"{}\"", outcome.detail,
                           line.bytes.substr(0, 200));
            return;
        case ParseOutcome::Kind::malformed:
            labelled(skip_counters_, "birdwatch_ingest_skipped_lines_total", "Lines skipped as unusable", "reason",
                     outcome.detail)
                .inc();
            if (first_.first(std::string("malformed:") + outcome.detail))
                log_->warn("msg=\"skipping malformed line (logged once per reason)\" reason=\"{}\" line=\"{}\"",
                           outcome.detail, line.bytes.substr(0, 200));
            return;
        case ParseOutcome::Kind::tweets:
            break;
    }
    for (const Tweet& tweet : tweets_) {
        tweets_parsed_.inc();
        std::string payload;
        payload.reserve(line.bytes.size() / 4 + 256);
        protocol::append_tweet_payload(payload, tweet, {}, line.received_ms);
        if (!out_.push(std::move(payload))) return;
    }
}

}  // namespace birdwatch
