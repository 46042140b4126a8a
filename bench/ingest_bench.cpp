// Ingest end to end: real stream lines (../shared/data/tweets, looped; the
// synthetic corpus without it) through the ingest's own components -- pipeline
// (parse, percolate against N registered queries) and publisher (PUBLISH to a real
// Redis, pipelined) -- next to the rate at which simdjson alone parses the same
// bytes (a full DOM parse per line), measured in the same run.
//
//   birdwatch-bench-ingest --redis-port P [--queries 10000] [--seconds 3]
// Prints:
//   ingest lines=.. tweets=.. matched=.. published=.. seconds=.. tweets_per_s=..
//   simdjson lines=.. seconds=.. tweets_per_s=..
//   ratio=..

#include "bench/workload.h"
#include "common/metrics.h"
#include "common/query/query.h"
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

    MetricsRegistry metrics;
    BoundedChannel<StreamLine> in(10000);
    BoundedChannel<QueryUpdate> updates(4);
    BoundedChannel<AcceptedTweet> accepted(10000);
    BoundedChannel<Publication> out(10000);
    Pipeline pipeline(PipelineOptions{}, in, updates, accepted, metrics);
    Journal journal(JournalOptions{}, accepted, out, nullptr, nullptr, metrics);
    PublisherOptions publisher_options;
    publisher_options.redis.port = redis_port;
    Publisher publisher(publisher_options, out, metrics);
    publisher.start();
    journal.start();
    pipeline.start();
    updates.push(std::move(snapshot));

    std::size_t pushed = 0;
    const auto start = Clock::now();
    while (seconds_since(start) < seconds)
        for (int i = 0; i < 64; ++i, ++pushed) in.push(StreamLine{lines[pushed % lines.size()], 0});
    in.close();
    pipeline.join();
    journal.join();
    publisher.join();
    const double took = seconds_since(start);
    const auto tweet_count = static_cast<std::uint64_t>(metrics.value("birdwatch_ingest_tweets_total"));
    const auto matched = static_cast<std::uint64_t>(metrics.value("birdwatch_ingest_tweets_matched_total"));
    const auto published = static_cast<std::uint64_t>(metrics.value("birdwatch_ingest_published_total"));
    const double ingest_rate = static_cast<double>(tweet_count) / took;
    std::printf("ingest lines=%zu tweets=%llu matched=%llu published=%llu seconds=%.2f tweets_per_s=%.0f\n", pushed,
                static_cast<unsigned long long>(tweet_count), static_cast<unsigned long long>(matched),
                static_cast<unsigned long long>(published), took, ingest_rate);

    std::vector<simdjson::padded_string> padded;
    for (const auto& line : lines) padded.emplace_back(line);
    std::size_t parsed = 0;
    const double parse_rate = simdjson_rate(padded, seconds, parsed);
    // Lines, not tweets: the same lines both ways, so the ratio compares like with like.
    const double ingest_lines_rate = static_cast<double>(pushed) / took;
    std::printf("simdjson lines=%zu seconds=%.2f lines_per_s=%.0f\n", parsed, seconds, parse_rate);
    std::printf("ingest_lines_per_s=%.0f ratio=%.2f\n", ingest_lines_rate, ingest_lines_rate / parse_rate);
    return 0;
}
