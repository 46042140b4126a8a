#pragma once
// The `matches` payload: the contract between ingest and fanout (docs/protocol.md).
// It is also the exact text frame browsers receive, so fanout forwards it unchanged.

#include "common/tweet.h"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace birdwatch::protocol {

inline constexpr int version = 1;
inline constexpr const char* default_matches_channel = "matches";

// {"v":1,"type":"tweet","qids":[..],"ingest_us":N,"tweet":{..}} around the tweet's
// JSON object from append_tweet_json() (built once, also what the store keeps).
void append_tweet_payload(std::string& out, std::string_view tweet_json, std::span<const std::string> query_ids,
                          std::int64_t ingest_us);  // epoch microseconds

// Reads the "qids" member of a `matches` payload; the rest is never parsed.
// One reader per thread (it keeps its parser's buffers).
class PayloadReader {
public:
    PayloadReader();
    ~PayloadReader();
    // The payload's query ids; empty when it has no readable "qids" array of strings.
    std::vector<std::string> qids(std::string_view payload);

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace birdwatch::protocol
