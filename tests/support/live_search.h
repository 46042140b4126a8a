#pragma once
// Live-search helpers for integration tests: subscribe a WebSocket client, pick the
// tweets out of what it received, and read a payload back into a Tweet so the
// query evaluator can check that each delivery really matched.

#include "common/query/matcher.h"
#include "common/tweet.h"
#include "common/tweet_parser.h"
#include "tests/support/ws_client.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace birdwatch::test {

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
        if (m.find("\"type\":\"tweet\"") != std::string::npos) out.push_back(m);
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
