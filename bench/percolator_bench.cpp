// Tweets/s matched against N registered queries on one core, by the percolator and
// by brute force (evaluating every query), measured side by side in one run.
// Each measurement is bounded in time; the whole run stops by itself.
//
//   birdwatch-bench-percolator [--sizes 1000,10000,100000,1000000] [--seconds 2] [--shared DIR] [--brute 0|1]

#include "bench/workload.h"
#include "ingest/percolator.h"

#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

using namespace birdwatch;
using Clock = std::chrono::steady_clock;

namespace {

struct Rate {
    double tweets_per_second = 0;
    double matches_per_tweet = 0;
    double candidates_per_tweet = 0;
};

// Runs `match_one` over the tweets, cyclically, for about `seconds`.
template <typename MatchOne>
Rate measure(const std::vector<Tweet>& tweets, double seconds, MatchOne&& match_one) {
    TweetFeatures features;
    std::vector<const std::string*> found;
    std::size_t done = 0, matched = 0;
    const auto start = Clock::now();
    const auto deadline = start + std::chrono::duration<double>(seconds);
    do {
        for (int i = 0; i < 16; ++i) {  // check the clock every 16 tweets
            extract_features(tweets[done % tweets.size()], features);
            found.clear();
            match_one(features, found);
            matched += found.size();
            ++done;
        }
    } while (Clock::now() < deadline);
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    return {static_cast<double>(done) / elapsed, static_cast<double>(matched) / static_cast<double>(done), 0};
}

std::vector<std::size_t> parse_sizes(const std::string& text) {
    std::vector<std::size_t> sizes;
    std::stringstream in(text);
    for (std::string item; std::getline(in, item, ',');) sizes.push_back(std::stoull(item));
    return sizes;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::size_t> sizes = {1000, 10000, 100000, 1000000};
    double seconds = 2.0;
    std::string shared = BIRDWATCH_SHARED_DATA_DIR;
    bool brute = true;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--sizes")) sizes = parse_sizes(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--seconds")) seconds = std::stod(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--shared")) shared = argv[i + 1];
        else if (!std::strcmp(argv[i], "--brute")) brute = std::strcmp(argv[i + 1], "0") != 0;
    }
    std::string source;
    const std::vector<Tweet> tweets = workload::load_tweets(shared, 20000, source);
    fmt::print("# percolator benchmark: {} tweets ({}), {:.1f} s per measurement, one thread\n", tweets.size(), source,
               seconds);
    fmt::print("{:>9} {:>14} {:>14} {:>9} {:>12} {:>12} {:>10}\n", "queries", "percolator/s", "brute-force/s", "ratio",
               "candidates", "matches", "build s");

    workload::QueryGenerator generator(tweets, 7);
    Percolator percolator;
    for (std::size_t size : sizes) {
        const auto build_start = Clock::now();
        while (percolator.size() < size) {
            QueryParse p = parse_query(generator.next());
            if (p.query) percolator.add(*p.query);
        }
        const double build = std::chrono::duration<double>(Clock::now() - build_start).count();
        const std::uint64_t candidates_before = percolator.candidates_evaluated();
        std::size_t fast_tweets = 0;
        Rate fast = measure(tweets, seconds, [&](const TweetFeatures& f, std::vector<const std::string*>& out) {
            percolator.match(f, out);
            ++fast_tweets;
        });
        fast.candidates_per_tweet =
            static_cast<double>(percolator.candidates_evaluated() - candidates_before) / static_cast<double>(fast_tweets);
        const Rate slow = brute ? measure(tweets, seconds,
                                          [&](const TweetFeatures& f, std::vector<const std::string*>& out) {
                                              percolator.match_brute_force(f, out);
                                          })
                                : Rate{};
        fmt::print("{:>9} {:>14.0f} {:>14.1f} {:>8.0f}x {:>12.1f} {:>12.2f} {:>10.2f}\n", size, fast.tweets_per_second,
                   slow.tweets_per_second, fast.tweets_per_second / slow.tweets_per_second, fast.candidates_per_tweet,
                   fast.matches_per_tweet, build);
        std::fflush(stdout);
    }
    return 0;
}
