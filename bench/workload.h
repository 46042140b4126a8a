#pragma once
// Inputs for percolator tests and benchmarks: tweets (the real ones in
// ../shared/data/tweets when present, else the synthetic corpus) and live-search
// queries generated from those tweets' own vocabulary, so that they match.

#include "common/tweet.h"
#include "ingest/sources/split_mix.h"

#include <cstdint>
#include <string>
#include <vector>

namespace birdwatch::workload {

// Up to `count` raw NDJSON lines (tweets, and the control messages real streams
// carry); `source` tells where they came from.
std::vector<std::string> load_lines(const std::string& shared_dir, std::size_t count, std::string& source);
// Up to `count` tweets parsed from those lines.
std::vector<Tweet> load_tweets(const std::string& shared_dir, std::size_t count, std::string& source);
std::vector<Tweet> synthetic_tweets(std::size_t count, std::uint64_t seed);

class QueryGenerator {
public:
    QueryGenerator(const std::vector<Tweet>& tweets, std::uint64_t seed);
    // A valid query in X rule syntax; a mix of keywords, phrases, hashtags, mentions,
    // from:/to:, lang:/is:/has: filters, negations, OR and groups. Keywords are content
    // words: never the 100 most frequent tokens of the tweets, nor tokens under 3 characters.
    std::string next();

private:
    std::uint64_t random() { return random_.next(); }
    const std::string& pick(const std::vector<std::string>& from);
    std::string word();

    std::vector<std::string> distinct_words_, word_occurrences_, hashtags_, mentions_, authors_, reply_users_, langs_;
    std::vector<std::string> phrases_;
    SplitMix64 random_;
};

}  // namespace birdwatch::workload
