#include "common/json_text.h"
#include "common/protocol.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace birdwatch;

TEST_CASE("strings are escaped so that any JSON parser reads them back unchanged", "[json]") {
    const std::string nasty = std::string("quote\" backslash\\ newline\n tab\t cr\r bell\x07 nul") + '\0' +
                              " unicode é 東京 🐦 end";
    std::string out;
    json_text::append_string(out, nasty);
    CHECK(nlohmann::json::parse(out).get<std::string>() == nasty);
    CHECK(out.find('\n') == std::string::npos);
}

TEST_CASE("integers, including negatives and extremes", "[json]") {
    std::string out;
    json_text::append_int(out, -9223372036854775807LL - 1);
    out.push_back(' ');
    json_text::append_int(out, 0);
    CHECK(out == "-9223372036854775808 0");
}

TEST_CASE("the matches payload carries every tweet field as docs/protocol.md defines it", "[json][protocol]") {
    Tweet t;
    t.id = "1500000000000000123";
    t.text = "héllo \"world\" #cpp @bob https://t.co/x";
    t.created_at_ms = 1446699939123;
    t.lang = "en";
    t.user = {"42", "alice", "Alice A.", "https://img/a.png", 1234};
    t.hashtags = {"cpp"};
    t.mentions = {"bob"};
    t.urls = {"https://example.com/x"};
    t.retweet_of = "99";
    t.has_media = true;
    std::string out;
    const std::vector<std::string> qids = {"q1", "q2"};
    std::string tweet_json;
    append_tweet_json(tweet_json, t);
    protocol::append_tweet_payload(out, tweet_json, qids, 1700000000000123, {1764500000000000, 7});
    const auto j = nlohmann::json::parse(out);
    CHECK(j["v"] == 1);
    CHECK(j["type"] == "tweet");
    CHECK(j["qids"] == nlohmann::json::array({"q1", "q2"}));
    CHECK(j["ingest_us"] == 1700000000000123);
    CHECK(j["epoch"] == 1764500000000000);
    CHECK(j["seq"] == 7);
    const protocol::StreamPosition position = protocol::read_position(out);
    CHECK(position.epoch == 1764500000000000);
    CHECK(position.seq == 7);
    CHECK(protocol::read_position(R"({"qids":[],"tweet":{"epoch":5,"seq":6}})").epoch == 0);  // only the head counts
    const auto& tw = j["tweet"];
    CHECK(tw["id"] == "1500000000000000123");
    CHECK(tw["text"] == t.text);
    CHECK(tw["created_at"] == "2015-11-05T05:05:39.123Z");
    CHECK(tw["timestamp_ms"] == 1446699939123);
    CHECK(tw["lang"] == "en");
    CHECK(tw["user"] == nlohmann::json{{"id", "42"}, {"screen_name", "alice"}, {"name", "Alice A."},
                                       {"profile_image_url", "https://img/a.png"}, {"followers_count", 1234}});
    CHECK(tw["hashtags"] == nlohmann::json::array({"cpp"}));
    CHECK(tw["mentions"] == nlohmann::json::array({"bob"}));
    CHECK(tw["urls"] == nlohmann::json::array({"https://example.com/x"}));
    CHECK(tw["retweet_of"] == "99");
    CHECK(tw["in_reply_to"].is_null());
    CHECK(tw["in_reply_to_user"].is_null());
    CHECK(tw["has_media"] == true);
}
