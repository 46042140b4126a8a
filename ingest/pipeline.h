#pragma once
// Stream lines in, `matches` payloads out: parse each line once, skip and count what
// is not a tweet, serialise each tweet to the published JSON.

#include "common/channel.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/tweet_parser.h"
#include "ingest/stream_line.h"

#include <thread>
#include <unordered_map>

namespace birdwatch {

struct PipelineOptions {
    std::size_t max_line_bytes = 1 << 20;
};

class Pipeline {
public:
    Pipeline(const PipelineOptions& options, BoundedChannel<StreamLine>& in, BoundedChannel<std::string>& out,
             MetricsRegistry& metrics);
    ~Pipeline();

    void start();
    // Returns once the input belt is closed and drained; then closes the output belt.
    void join();

private:
    void run();
    void handle(const StreamLine& line);
    Counter& labelled(std::unordered_map<const char*, Counter*>& cache, const char* name, const char* help,
                      const char* label, const char* value);

    const PipelineOptions options_;
    BoundedChannel<StreamLine>& in_;
    BoundedChannel<std::string>& out_;
    MetricsRegistry& metrics_;
    std::shared_ptr<spdlog::logger> log_;
    FirstOccurrence first_;
    TweetParser parser_;
    std::vector<Tweet> tweets_;

    Counter& lines_;
    Counter& tweets_parsed_;
    Counter& keep_alives_;
    Counter& oversized_;
    std::unordered_map<const char*, Counter*> control_counters_;
    std::unordered_map<const char*, Counter*> skip_counters_;
    std::thread thread_;
};

}  // namespace birdwatch
