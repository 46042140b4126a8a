// Ingest end to end: real stream lines (../shared/data/tweets, looped; the
// synthetic corpus without it) through the ingest's own components -- pipeline
// (parse, percolate against N registered queries) and publisher (PUBLISH to a real
// Redis, pipelined) -- next to the rate at which simdjson alone parses the same
// bytes (a full DOM parse per line), and next to Bluesky Jetstream events (posts made
// from the same texts, bench/jetstream_events) taking the Jetstream source's path:
// mapped to a tweet, then the same pipeline and publisher. All in the same run; pin the
// process to one core (taskset) to read the rates per core.
//
//   birdwatch-bench-ingest --redis-port P [--queries 10000] [--seconds 3]
// Prints:
//   ingest lines=.. tweets=.. matched=.. published=.. seconds=.. tweets_per_s=..
//   jetstream events=.. posts=.. matched=.. published=.. seconds=.. events_per_s=.. vs_tweets=..
//   simdjson lines=.. seconds=.. lines_per_s=..
//   ingest_lines_per_s=.. ratio=..

#include "bench/jetstream_events.h"
#include "bench/workload.h"
#include "common/metrics.h"
#include "common/query/query.h"
#include "ingest/jetstream/mapper.h"
#include "ingest/journal.h"
#include "ingest/pipeline.h"
#include "ingest/publisher.h"

#include <simdjson.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

using namespace birdwatch;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Lines per second simdjson's DOM parser takes in, one core.
double simdjson_rate(const std::vector<simdjson::padded_string>& lines, double seconds, std::size_t& parsed) {
    simdjson::dom::parser parser;
    std::size_t done = 0;
    const auto start = Clock::now();
    do {
        for (int i = 0; i < 64; ++i, ++done) {
            simdjson::dom::element doc;
            if (parser.parse(lines[done % lines.size()]).get(doc)) return 0;  // every line is valid JSON
        }
    } while (seconds_since(start) < seconds);
    parsed = done;
    return static_cast<double>(done) / seconds_since(start);
}

struct Run {
    std::size_t pushed = 0;
    double seconds = 0;
    std::uint64_t tweets = 0, matched = 0, published = 0;
};

// The ingest's pipeline, journal (no store) and publisher over what `feed` pushes until it returns.
template <typename Feed>
Run run_ingest(const QueryUpdate& queries, int redis_port, Feed&& feed) {
    MetricsRegistry metrics;
    BoundedChannel<StreamLine> in(10000);
    BoundedChannel<QueryUpdate> updates(4);
    BoundedChannel<AcceptedTweet> accepted(10000);
    BoundedChannel<Publication> out(10000);
    // The tweet lines loop: without this, every tweet after the first lap would be dropped
    // as a repeat before it is percolated, and the run would measure the repeat check.
    PipelineOptions pipeline_options;
    pipeline_options.recent_ids = 0;
    Pipeline pipeline(pipeline_options, in, updates, accepted, metrics);
    Journal journal(JournalOptions{}, accepted, out, nullptr, nullptr, metrics);
    PublisherOptions publisher_options;
    publisher_options.redis.port = redis_port;
    Publisher publisher(publisher_options, out, metrics);
    publisher.start();
    journal.start();
    pipeline.start();
    updates.push(QueryUpdate(queries));
    Run run;
    const auto start = Clock::now();
    run.pushed = feed(in, start);
    in.close();
    pipeline.join();
    journal.join();
    publisher.join();
    run.seconds = seconds_since(start);
    run.tweets = static_cast<std::uint64_t>(metrics.value("birdwatch_ingest_tweets_total"));
    run.matched = static_cast<std::uint64_t>(metrics.value("birdwatch_ingest_tweets_matched_total"));
    run.published = static_cast<std::uint64_t>(metrics.value("birdwatch_ingest_published_total"));
    return run;
}

}  // namespace

int main(int argc, char** argv) {
    int redis_port = 0;
    std::size_t query_count = 10000;
    double seconds = 3;
    std::string shared = BIRDWATCH_SHARED_DATA_DIR;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i], value = argv[i + 1];
        if (flag == "--redis-port") redis_port = std::stoi(value);
        else if (flag == "--queries") query_count = std::stoul(value);
        else if (flag == "--seconds") seconds = std::stod(value);
        else if (flag == "--shared") shared = value;
    }
    if (redis_port == 0) {
        std::cerr << "usage: birdwatch-bench-ingest --redis-port P [--queries N] [--seconds S] [--shared DIR]\n";
        return 2;
    }
    std::string source;
    const std::vector<std::string> lines = workload::load_lines(shared, 100000, source);
    const std::vector<Tweet> tweets = workload::load_tweets(shared, 100000, source);
    std::size_t bytes = 0;
    for (const auto& line : lines) bytes += line.size();
    std::printf("# ingest benchmark: %zu lines (%zu tweets) of %s, %.0f B per line, %zu queries, %.1f s\n",
                lines.size(), tweets.size(), source.c_str(), static_cast<double>(bytes) / lines.size(), query_count,
                seconds);

    QueryUpdate snapshot;
    snapshot.kind = QueryUpdate::Kind::snapshot;
    workload::QueryGenerator generator(tweets, 7);
    while (snapshot.live.size() < query_count) {
        const std::string text = generator.next();
        if (const auto parsed = parse_query(text); parsed.query) snapshot.live.emplace_back(parsed.query->id, text);
    }

    const Run tweets_run = run_ingest(snapshot, redis_port, [&](BoundedChannel<StreamLine>& in, Clock::time_point start) {
        std::size_t pushed = 0;
        while (seconds_since(start) < seconds)
            for (int i = 0; i < 64; ++i, ++pushed) in.push(StreamLine{lines[pushed % lines.size()], 0});
        return pushed;
    });
    const double ingest_rate = static_cast<double>(tweets_run.tweets) / tweets_run.seconds;
    std::printf("ingest lines=%zu tweets=%llu matched=%llu published=%llu seconds=%.2f tweets_per_s=%.0f\n",
                tweets_run.pushed, static_cast<unsigned long long>(tweets_run.tweets),
                static_cast<unsigned long long>(tweets_run.matched), static_cast<unsigned long long>(tweets_run.published),
                tweets_run.seconds, ingest_rate);

    // Jetstream: each post event is new (its own time_us and rkey), as on the live stream;
    // enough are made up front that the run never repeats one.
    std::vector<std::string> texts;
    for (const Tweet& tweet : tweets) texts.push_back(tweet.text);
    const std::size_t event_count = static_cast<std::size_t>(std::max(1.0, seconds) * 150000);
    const std::vector<std::string> events = workload::jetstream_events(
        workload::generated_posts(event_count, 3, texts), 1783176000000000, 1000, false);
    const Run jetstream_run = run_ingest(snapshot, redis_port, [&](BoundedChannel<StreamLine>& in, Clock::time_point start) {
        JetstreamMapper mapper(100000);  // the source's default memory
        std::size_t pushed = 0;
        while (pushed < events.size() && seconds_since(start) < seconds) {
            for (int i = 0; i < 64 && pushed < events.size(); ++i, ++pushed) {
                const JetstreamEvent event = mapper.map(events[pushed]);
                if (event.kind != JetstreamEvent::Kind::post) continue;
                std::string line;
                append_tweet_json(line, event.tweet);  // what the source hands the pipeline
                in.push(StreamLine{std::move(line), 0, event.time_us});
            }
        }
        return pushed;
    });
    const double jetstream_rate = static_cast<double>(jetstream_run.pushed) / jetstream_run.seconds;
    std::printf("jetstream events=%zu posts=%llu matched=%llu published=%llu seconds=%.2f events_per_s=%.0f "
                "vs_tweets=%.2f%s\n",
                jetstream_run.pushed, static_cast<unsigned long long>(jetstream_run.tweets),
                static_cast<unsigned long long>(jetstream_run.matched),
                static_cast<unsigned long long>(jetstream_run.published), jetstream_run.seconds, jetstream_rate,
                jetstream_rate / ingest_rate, jetstream_run.pushed == events.size() ? " (ran out of events)" : "");

    std::vector<simdjson::padded_string> padded;
    for (const auto& line : lines) padded.emplace_back(line);
    std::size_t parsed = 0;
    const double parse_rate = simdjson_rate(padded, seconds, parsed);
    // Lines, not tweets: the same lines both ways, so the ratio compares like with like.
    const double ingest_lines_rate = static_cast<double>(tweets_run.pushed) / tweets_run.seconds;
    std::printf("simdjson lines=%zu seconds=%.2f lines_per_s=%.0f\n", parsed, seconds, parse_rate);
    std::printf("ingest_lines_per_s=%.0f ratio=%.2f\n", ingest_lines_rate, ingest_lines_rate / parse_rate);
    return 0;
}
