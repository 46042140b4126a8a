#pragma once
// Live-search helpers for integration tests: subscribe a WebSocket client, pick the
// tweets out of what it received, and read a payload back into a Tweet so the
// query evaluator can check that each delivery really matched.

#include "common/query/matcher.h"
#include "common/tweet.h"
#include "tests/support/ws_client.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace birdwatch::test {

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

inline Tweet tweet_from_payload(const std::string& payload) {
    const auto j = nlohmann::json::parse(payload)["tweet"];
    Tweet t;
    t.id = j["id"];
    t.text = j["text"];
    t.lang = j["lang"].is_null() ? "" : j["lang"].get<std::string>();
    t.user.screen_name = j["user"]["screen_name"];
    t.hashtags = j["hashtags"].get<std::vector<std::string>>();
    t.mentions = j["mentions"].get<std::vector<std::string>>();
    t.urls = j["urls"].get<std::vector<std::string>>();
    t.retweet_of = j["retweet_of"].is_null() ? "" : j["retweet_of"].get<std::string>();
    t.in_reply_to = j["in_reply_to"].is_null() ? "" : j["in_reply_to"].get<std::string>();
    t.in_reply_to_user = j["in_reply_to_user"].is_null() ? "" : j["in_reply_to_user"].get<std::string>();
    t.has_media = j["has_media"];
    return t;
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
