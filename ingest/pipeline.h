#pragma once
// Stream lines in, accepted tweets out. Each line is parsed once; what is not a tweet
// is skipped and counted; each tweet is percolated against the live queries and handed
// on with its publications: on the matches channel with the ids of the queries it
// matched, when it matched any, and on the optional firehose channel in any case. (The
// journal publishes them once the tweet is durable.) Query additions and removals
// arrive on their own belt and are applied between tweets, on this thread, lock-free.

#include "common/thread_guard.h"
#include "common/channel.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/redis_connection.h"
#include "common/store/tweet_store.h"
#include "common/tweet_parser.h"
#include "ingest/accepted_tweet.h"
#include "ingest/percolator.h"
#include "ingest/query_follower.h"
#include "ingest/recent_ids.h"
#include "ingest/router.h"
#include "ingest/stream_line.h"

#include <atomic>
#include <thread>
#include <unordered_map>

namespace birdwatch {

struct PipelineOptions {
    std::size_t max_line_bytes = 1 << 20;
    std::string matches_channel = "matches";
    // Cluster mode: each fanout replica gets its own channel with only its queries (Router).
    bool per_replica_channels = false;
    std::size_t max_replicas = 4096;
    std::string firehose_channel;  // empty: no firehose
    // A query missing from a registry snapshot is matched this much longer: a Redis that
    // restarted empty holds no queries until the fanouts lease theirs again, and tweets
    // meanwhile must still match (removals the registry announces apply at once).
    std::chrono::milliseconds snapshot_grace{60000};
    // Tweet ids remembered to drop a stream's repeats (replays, reconnects, X's own
    // duplicate deliveries): a repeat within this many tweets is not published or stored again.
    std::size_t recent_ids = 200000;
};

class Pipeline {
public:
    Pipeline(const PipelineOptions& options, BoundedChannel<StreamLine>& lines, BoundedChannel<QueryUpdate>& queries,
             BoundedChannel<AcceptedTweet>& out, MetricsRegistry& metrics);
    ~Pipeline();

    void start();
    // Returns once the line belt is closed and drained; then closes the output belt.
    void join();

private:
    void run();
    void apply_query_updates();
    void add_query(const std::string& qid, const std::string& text);
    void handle(const StreamLine& line);
    void handle_deletion(const std::string& id, std::int64_t position);
    void mark_live(const std::string& qid, Router::Channel& channel);

    const PipelineOptions options_;
    BoundedChannel<StreamLine>& lines_;
    BoundedChannel<QueryUpdate>& queries_;
    BoundedChannel<AcceptedTweet>& out_;
    std::shared_ptr<spdlog::logger> log_;
    FirstOccurrence first_;
    TweetParser parser_;
    Percolator percolator_;
    std::vector<Tweet> tweets_;
    RecentIds recent_;
    std::atomic<std::size_t> recent_size_{0};  // for /metrics
    TweetFeatures features_;
    std::vector<const std::string*> matched_;
    std::vector<std::string> qids_;
    std::unordered_map<std::string, std::chrono::steady_clock::time_point> absent_since_;  // see snapshot_grace
    Router router_;
    const std::int64_t epoch_;  // this run's: payloads carry it with their seq per channel
    Router::Channel firehose_;
    std::uint64_t newest_id_ = 0;  // the highest tweet id handled so far

    Counter& lines_total_;
    Counter& tweets_total_;
    Counter& matched_total_;
    Counter& keep_alives_;
    Counter& oversized_;
    Counter& rejected_queries_;
    Counter& repeats_;
    Counter& deletions_;
    Counter& live_markers_;
    Gauge& live_queries_;
    Gauge& lag_ms_;
    LabelledCounters control_messages_;
    LabelledCounters skipped_lines_;
    ThreadGuard guard_;
    std::thread thread_;
};

}  // namespace birdwatch
