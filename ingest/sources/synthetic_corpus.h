#pragma once
// Deterministic generator of realistic v1.1-shaped tweet JSON: text with hashtags,
// mentions and links, a pool of users, several languages, retweets and replies.
// The same (seed, start_ms, spacing_ms) always yields the same bytes, so tests and
// benchmarks run with no credentials and no external data; tweet ids derive from
// start_ms (X's Snowflake layout), so runs that start at different times never share one.

#include "ingest/sources/split_mix.h"

#include <cstdint>
#include <string>

namespace birdwatch {

class SyntheticCorpus {
public:
    SyntheticCorpus(std::uint64_t seed, std::int64_t start_ms, std::int64_t spacing_ms);

    // The next tweet as one line of JSON (no trailing newline).
    std::string next();
    std::uint64_t produced() const { return produced_; }

private:
    std::uint64_t random() { return random_.next(); }
    std::uint64_t below(std::uint64_t n) { return random() % n; }

    struct User {
        std::string id, screen_name, name;
        std::int64_t followers;
    };
    User user(std::uint64_t index) const;
    std::uint64_t snowflake(std::uint64_t n, std::uint64_t low_bits) const;  // the id of the n-th tweet
    std::string tweet_text(const char* lang, std::string& entities_json, std::uint64_t& mention_count);

    SplitMix64 random_;
    const std::uint64_t seed_;
    const std::int64_t start_ms_;
    const std::int64_t spacing_ms_;
    std::uint64_t produced_ = 0;
};

}  // namespace birdwatch
