#pragma once
// The `matches` payload: the contract between ingest and fanout (docs/protocol.md).
// It is also the exact text frame browsers receive, so fanout forwards it unchanged.

#include "common/tweet.h"

#include <cstdint>
#include <span>
#include <string>

namespace birdwatch::protocol {

inline constexpr int version = 1;
inline constexpr const char* default_matches_channel = "matches";

// {"v":1,"type":"tweet","qids":[..],"ingest_ms":N,"tweet":{..}}
void append_tweet_payload(std::string& out, const Tweet& tweet, std::span<const std::string> query_ids,
                          std::int64_t ingest_ms);

}  // namespace birdwatch::protocol
