#include "ingest/pipeline.h"

#include "common/clock.h"
#include "common/protocol.h"


#include <algorithm>
#include <unordered_set>

namespace birdwatch {

using namespace std::chrono_literals;

Pipeline::Pipeline(const PipelineOptions& options, BoundedChannel<StreamLine>& lines,
                   BoundedChannel<QueryUpdate>& queries, BoundedChannel<AcceptedTweet>& out,
                   MetricsRegistry& metrics)
    : options_(options),
      lines_(lines),
      queries_(queries),
      out_(out),
      log_(make_logger("pipeline")),
      recent_(options.recent_ids),
      router_({options.matches_channel, options.per_replica_channels, options.max_replicas, options.snapshot_grace},
              metrics),
      epoch_(now_epoch_us()),
      lines_total_(metrics.counter("birdwatch_ingest_lines_total", "Stream lines received from the source")),
      tweets_total_(metrics.counter("birdwatch_ingest_tweets_total", "Tweets parsed from the stream")),
      matched_total_(metrics.counter("birdwatch_ingest_tweets_matched_total", "Tweets that matched at least one query")),
      keep_alives_(metrics.counter("birdwatch_ingest_keepalives_total", "Blank keep-alive lines")),
      oversized_(metrics.counter("birdwatch_ingest_skipped_lines_total", "Lines skipped as unusable",
                                 R"(reason="oversized")")),
      rejected_queries_(metrics.counter("birdwatch_ingest_queries_rejected_total",
                                        "Registry queries that did not parse (registered by another version?)")),
      repeats_(metrics.counter("birdwatch_ingest_repeats_total",
                               "Tweets whose id the pipeline had just handled (stream repeats): dropped")),
      deletions_(metrics.counter("birdwatch_ingest_deletions_total",
                                 "Delete notices passed on to the store and the fanouts")),
      live_markers_(metrics.counter("birdwatch_ingest_live_markers_total",
                                    "Markers published where a query went live (history meets live there)")),
      live_queries_(metrics.gauge("birdwatch_ingest_live_queries", "Queries the percolator matches against")),
      lag_ms_(metrics.gauge("birdwatch_ingest_lag_ms",
                            "How far behind the stream the pipeline is: receipt time minus creation time of the "
                            "latest tweet (includes X's own delivery delay)")),
      control_messages_(metrics, "birdwatch_ingest_control_messages_total", "Control messages (not tweets) by kind",
                        "kind"),
      skipped_lines_(metrics, "birdwatch_ingest_skipped_lines_total", "Lines skipped as unusable", "reason"),
      guard_("pipeline", metrics) {
    firehose_.name = std::make_shared<const std::string>(options.firehose_channel);
    metrics.gauge_fn("birdwatch_ingest_queue_depth", "Lines waiting for the pipeline",
                     [this] { return static_cast<double>(lines_.size()); });
    metrics.gauge_fn("birdwatch_ingest_recent_ids", "Tweet ids remembered to drop repeats (bounded by recent_ids)",
                     [this] { return static_cast<double>(recent_size_.load(std::memory_order_relaxed)); });
}

Pipeline::~Pipeline() { join(); }

void Pipeline::start() { thread_ = std::thread([this] { guard_.run([this] { run(); }); }); }

void Pipeline::join() {
    if (thread_.joinable()) thread_.join();
}

void Pipeline::run() {
    while (true) {
        apply_query_updates();
        auto line = lines_.pop_for(100ms);  // bounded wait, so query updates apply while the stream is quiet
        if (line) {
            apply_query_updates();  // a query that arrived while we waited applies to this line
            guard_.attempt("stream line", [&] { handle(*line); });
        }
        else if (lines_.closed_and_drained())
            break;
    }
    out_.close();
}

void Pipeline::add_query(const std::string& qid, const std::string& text) {
    QueryParse parse = parse_query(text);
    if (!parse.query) {
        rejected_queries_.inc();
        if (first_.first("bad-query"))
            log_->warn("msg=\"registry query does not parse, ignored (logged once)\" qid={} error={}", logfmt(qid),
                       logfmt(parse.error.message));
        return;
    }
    parse.query->id = qid;  // the registry's id is the one clients hold
    if (percolator_.add(*parse.query)) router_.each_holder(qid, [&](Router::Channel& channel) { mark_live(qid, channel); });
}

// Where the query went live, in the stream's own order: every tweet handled before has
// an id of at most newest_id_, every later one is matched against it. Fanouts start
// their clients' live delivery here and history below it, so the two meet exactly.
void Pipeline::mark_live(const std::string& qid, Router::Channel& channel) {
    AcceptedTweet marker;
    std::string payload;
    protocol::append_live_payload(payload, qid, newest_id_, {epoch_, ++channel.seq});
    marker.publications.push_back({channel.name, std::move(payload)});
    live_markers_.inc();
    out_.push(std::move(marker));
}

void Pipeline::apply_query_updates() {
    const auto now = std::chrono::steady_clock::now();
    while (auto update = queries_.try_pop()) {
        switch (update->kind) {
            case QueryUpdate::Kind::add:
                absent_since_.erase(update->qid);
                add_query(update->qid, update->text);
                break;
            case QueryUpdate::Kind::remove:
                absent_since_.erase(update->qid);
                percolator_.remove(update->qid);
                router_.forget_query(update->qid);
                break;
            case QueryUpdate::Kind::mark:
                if (!percolator_.contains(update->qid)) break;
                if (update->replica.empty())
                    router_.each_holder(update->qid, [&](Router::Channel& channel) { mark_live(update->qid, channel); });
                else if (Router::Channel* channel = router_.holder(update->qid, update->replica))
                    mark_live(update->qid, *channel);
                break;
            case QueryUpdate::Kind::hold:
                // Only for a query it matches (the registry announces a query before its
                // holds): routes stay bounded by the queries held, whatever events say.
                if (!percolator_.contains(update->qid)) break;
                if (Router::Channel* channel = router_.hold(update->qid, update->replica))
                    mark_live(update->qid, *channel);
                break;
            case QueryUpdate::Kind::drop:
                router_.drop(update->qid, update->replica);
                break;
            case QueryUpdate::Kind::snapshot: {
                // The snapshot is the truth, except that what it lacks is kept for snapshot_grace.
                std::unordered_set<std::string> live;
                for (const auto& [qid, text] : update->live) live.insert(qid);
                percolator_.for_each_id([&](const std::string& qid) {
                    if (!live.count(qid)) absent_since_.try_emplace(qid, now);
                });
                for (const auto& [qid, text] : update->live) {
                    absent_since_.erase(qid);
                    add_query(qid, text);
                }
                std::erase_if(update->holds, [&](const auto& hold) { return !percolator_.contains(hold.first); });
                for (auto& [qid, channel] : router_.snapshot(update->holds, now)) mark_live(qid, *channel);
                break;
            }
        }
    }
    for (auto it = absent_since_.begin(); it != absent_since_.end();) {
        if (now - it->second < options_.snapshot_grace) {
            ++it;
            continue;
        }
        percolator_.remove(it->first);
        router_.forget_query(it->first);
        it = absent_since_.erase(it);
    }
    router_.expire(now);
    live_queries_.set(static_cast<std::int64_t>(percolator_.size()));
}

void Pipeline::handle(const StreamLine& line) {
    lines_total_.inc();
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
            control_messages_[outcome.detail].inc();
            if (first_.first(std::string("control:") + outcome.detail))
                log_->info("msg=\"control message (first of its kind)\" kind={} line={}", outcome.detail,
                           logfmt(line.bytes.substr(0, 200)));
            if (!outcome.deleted_id.empty()) handle_deletion(outcome.deleted_id, line.position);
            return;
        case ParseOutcome::Kind::malformed:
            skipped_lines_[outcome.detail].inc();
            if (first_.first(std::string("malformed:") + outcome.detail))
                log_->warn("msg=\"skipping malformed line (logged once per reason)\" reason={} line={}",
                           logfmt(outcome.detail), logfmt(line.bytes.substr(0, 200)));
            return;
        case ParseOutcome::Kind::tweets:
            break;
    }
    for (const Tweet& tweet : tweets_) {
        tweets_total_.inc();
        const std::uint64_t key = RecentIds::key_of(tweet.id);  // the id itself when decimal: parsed once
        if (recent_.seen_before(key)) {
            repeats_.inc();
            continue;
        }
        recent_size_.store(recent_.size(), std::memory_order_relaxed);
        if (key >> 63 == 0) newest_id_ = std::max(newest_id_, key);
        if (tweet.created_at_ms > 0) lag_ms_.set(line.received_us / 1000 - tweet.created_at_ms);
        extract_features(tweet, features_);
        matched_.clear();
        percolator_.match(features_, matched_);
        AcceptedTweet accepted{{tweet, {}}, {}, line.position};
        std::string& tweet_json = accepted.tweet.json;
        tweet_json.reserve(line.bytes.size() / 4 + 256);
        append_tweet_json(tweet_json, tweet);
        if (!matched_.empty() || !options_.firehose_channel.empty()) {
            qids_.clear();
            for (const std::string* qid : matched_) qids_.push_back(*qid);
            std::sort(qids_.begin(), qids_.end());
            const auto publish = [&](Router::Channel& channel, const std::vector<std::string>& qids) {
                std::string out;
                out.reserve(tweet_json.size() + 96 + 36 * qids.size());
                protocol::append_tweet_payload(out, tweet_json, qids, line.received_us, {epoch_, ++channel.seq});
                accepted.publications.push_back({channel.name, std::move(out)});
            };
            if (!options_.firehose_channel.empty()) publish(firehose_, qids_);
            if (!matched_.empty()) {
                matched_total_.inc();
                router_.route(qids_, publish);
            }
        }
        if (!out_.push(std::move(accepted))) return;
    }
}

// Stored, then published to every fanout, in order with the tweets around it.
void Pipeline::handle_deletion(const std::string& id, std::int64_t position) {
    const bool decimal = !id.empty() && id.size() <= 19 && id.find_first_not_of("0123456789") == std::string::npos;
    if (!decimal) return;  // counted as a control message; no stored tweet has such an id
    deletions_.inc();
    AcceptedTweet deletion;
    deletion.tweet.tweet.id = id;
    deletion.tweet.json = delete_notice_json(id);
    deletion.tweet.deletion = true;
    deletion.position = position;
    router_.each_channel([&](Router::Channel& channel) {
        std::string payload;
        protocol::append_delete_payload(payload, id, {epoch_, ++channel.seq});
        deletion.publications.push_back({channel.name, std::move(payload)});
    });
    out_.push(std::move(deletion));
}

}  // namespace birdwatch
