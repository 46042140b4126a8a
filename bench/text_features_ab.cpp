// Built twice by bench/text-ab, against two source trees and their libbirdwatch_common.a:
// tokenize() over the same raw tweet texts, and extract_features() over the same
// parsed tweets, for about two seconds each. One-line results on stdout.
#include "common/query/matcher.h"
#include "common/query/tokens.h"
#include "common/tweet_parser.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>

int main(int argc, char** argv) {
    using Clock = std::chrono::steady_clock;
    std::vector<std::string> texts;
    std::vector<birdwatch::Tweet> tweets;
    birdwatch::TweetParser parser;
    for (int f = 1; f < argc; ++f) {
        std::ifstream in(argv[f]);
        for (std::string line; std::getline(in, line);) {
            parser.parse(line, tweets);
            const auto j = nlohmann::json::parse(line, nullptr, false);
            if (!j.is_object()) continue;
            const auto& e = j.contains("extended_tweet") ? j["extended_tweet"] : j;
            for (const char* key : {"full_text", "text"})
                if (e.contains(key) && e[key].is_string()) {
                    texts.push_back(e[key]);
                    break;
                }
        }
    }
    if (texts.empty() || tweets.empty()) return 1;
    std::vector<birdwatch::TermHash> hashes;
    std::size_t done = 0, tokens = 0;
    auto start = Clock::now();
    while (Clock::now() - start < std::chrono::seconds(2))
        for (const auto& text : texts) {
            hashes.clear();
            birdwatch::tokenize(text, hashes);
            tokens += hashes.size();
            ++done;
        }
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("tokenize: %zu raw texts, %.0f texts/s, %.1f tokens/text\n", texts.size(), done / seconds,
                static_cast<double>(tokens) / done);
    birdwatch::TweetFeatures features;
    done = tokens = 0;
    start = Clock::now();
    while (Clock::now() - start < std::chrono::seconds(2))
        for (const auto& tweet : tweets) {
            birdwatch::extract_features(tweet, features);
            tokens += features.tokens.size();
            ++done;
        }
    seconds = std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("features: %zu tweets as parsed, %.0f tweets/s, %.1f tokens/tweet\n", tweets.size(), done / seconds,
                static_cast<double>(tokens) / done);
}
