#pragma once
// Live-search helpers for integration tests: subscribe a WebSocket client, pick the
// tweets out of what it received, and read a payload back into a Tweet so the
// query evaluator can check that each delivery really matched.

#include "common/clock.h"
#include "common/protocol.h"
#include "common/query/matcher.h"
#include "common/tweet.h"
#include "common/tweet_parser.h"
#include "tests/support/ws_client.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

namespace birdwatch::test {

// "Nothing more arrives", made observable. A fanout forwards a channel's payloads to each
// client in the order Redis delivered them, so a client that holds a sentinel published
// after the last real payload holds everything published before it, repeats included.
// Its id is the lowest there is, so it moves no replica's boundary or gap bookkeeping;
// tweet_payloads() leaves it out.
inline constexpr const char* sentinel_marker = R"("text":"end-of-stream sentinel")";

inline bool is_sentinel(const std::string& message) { return message.find(sentinel_marker) != std::string::npos; }

// A `matches` payload for the queries `qids` (PUBLISH or SPUBLISH it on their channel).
inline std::string sentinel_payload(std::vector<std::string> qids) {
    Tweet sentinel;
    sentinel.id = "1";
    sentinel.text = "end-of-stream sentinel";
    sentinel.created_at_ms = 1700000000000;
    sentinel.user = {"1", "sentinel", "Sentinel", "", 0};
    std::string tweet_json, payload;
    append_tweet_json(tweet_json, sentinel);
    std::sort(qids.begin(), qids.end());
    protocol::append_tweet_payload(payload, tweet_json, qids, now_epoch_us());
    return payload;
}

inline bool wait_for_sentinel(const WsClient& client, std::chrono::milliseconds timeout) {
    std::size_t seen = 0;  // messages already looked at
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        const auto all = client.messages();
        for (; seen < all.size(); ++seen)
            if (is_sentinel(all[seen])) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        client.wait_for_messages(all.size() + 1, std::chrono::milliseconds(50));
    }
}

// A v1.1 stream line: a tweet by @alice, and the delete notice of a tweet.
inline std::string v1_tweet(const std::string& id, const std::string& text) {
    return nlohmann::json{{"id_str", id}, {"text", text}, {"created_at", "Thu Nov 05 05:05:39 +0000 2015"},
                          {"user", {{"id_str", "7"}, {"screen_name", "alice"}, {"name", "Alice"}}}, {"lang", "en"}}
        .dump();
}
inline std::string v1_delete(const std::string& id) {
    return R"({"delete":{"status":{"id":)" + id + R"(,"id_str":")" + id + R"(","user_id":7},"timestamp_ms":"1446699939000"}})";
}

// Sends subscribe and waits for its reply; returns the query id.
inline std::string subscribe(WsClient& client, const std::string& query) {
    const std::size_t before = client.message_count();
    client.send(nlohmann::json{{"type", "subscribe"}, {"query", query}}.dump());
    REQUIRE(client.wait_for_messages(before + 1, std::chrono::seconds(5)));
    const auto reply = nlohmann::json::parse(client.messages()[before]);
    INFO(reply.dump());
    REQUIRE(reply["type"] == "subscribed");
    return reply["qid"];
}

inline std::vector<std::string> tweet_payloads(const WsClient& client) {
    std::vector<std::string> out;
    for (const auto& m : client.messages())
        if (m.find("\"type\":\"tweet\"") != std::string::npos && !is_sentinel(m)) out.push_back(m);
    return out;
}

// The payload's tweet read back with the product's own parser (our published form),
// so a quoted Post and a Retweet's marker come back too.
inline Tweet tweet_from_payload(const std::string& payload) {
    const auto j = nlohmann::json::parse(payload)["tweet"];
    TweetParser parser;
    std::vector<Tweet> out;
    parser.parse(j.dump(), out);
    REQUIRE(out.size() == 1);
    return out[0];
}

inline bool query_matches(const std::string& query, const Tweet& tweet) {
    const QueryParse p = parse_query(query);
    REQUIRE(p.query);
    return matches(p.query->root, extract_features(tweet));
}

inline std::vector<std::string> qids_of(const std::string& payload) {
    return nlohmann::json::parse(payload)["qids"].get<std::vector<std::string>>();
}

}  // namespace birdwatch::test
