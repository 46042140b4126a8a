#include "common/tweet_parser.h"
#include "tests/support/shared_data.h"

#include <cstring>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <map>

using namespace birdwatch;
using Kind = ParseOutcome::Kind;

namespace {

struct Tally {
    std::size_t tweets = 0, lines_with_tweets = 0;
    std::map<std::string, int> control, malformed;
    int blank = 0;
};

Tally parse_all(const std::vector<std::string>& lines, std::vector<Tweet>* keep = nullptr) {
    TweetParser parser;
    Tally tally;
    std::vector<Tweet> tweets;
    for (const auto& line : lines) {
        tweets.clear();
        const auto outcome = parser.parse(line, tweets);
        switch (outcome.kind) {
            case Kind::tweets: tally.tweets += tweets.size(); ++tally.lines_with_tweets; break;
            case Kind::control: ++tally.control[outcome.detail]; break;
            case Kind::malformed: ++tally.malformed[outcome.detail]; break;
            case Kind::blank: ++tally.blank; break;
        }
        if (keep) keep->insert(keep->end(), tweets.begin(), tweets.end());
    }
    return tally;
}

}  // namespace

TEST_CASE("a v1.1 tweet keeps its full extended text, entities, user and time", "[parser]") {
    const std::string line = R"({"created_at":"Thu Nov 05 05:05:39 +0000 2015","id":662133652566835202,
      "id_str":"662133652566835202","text":"short version…","truncated":true,
      "in_reply_to_status_id_str":"662133652566835100",
      "user":{"id":983741324,"id_str":"983741324","name":"Maggie","screen_name":"maggi",
              "followers_count":321,"profile_image_url":"http://a/p.png","profile_image_url_https":"https://a/p.png"},
      "entities":{"hashtags":[{"text":"short","indices":[0,5]}],"user_mentions":[],"urls":[]},
      "extended_tweet":{"full_text":"the full version with #Pisteare and @bob https://t.co/x",
        "entities":{"hashtags":[{"text":"Pisteare"}],"user_mentions":[{"screen_name":"bob","id_str":"1"}],
                    "urls":[{"url":"https://t.co/x","expanded_url":"https://example.com/x"}],
                    "media":[{"type":"photo"}]}},
      "lang":"es","timestamp_ms":"1446699939000"})";
    TweetParser parser;
    std::vector<Tweet> out;
    REQUIRE(parser.parse(line, out).kind == Kind::tweets);
    REQUIRE(out.size() == 1);
    const Tweet& t = out[0];
    CHECK(t.id == "662133652566835202");
    CHECK(t.text == "the full version with #Pisteare and @bob https://t.co/x");
    CHECK(t.hashtags == std::vector<std::string>{"Pisteare"});
    CHECK(t.mentions == std::vector<std::string>{"bob"});
    CHECK(t.urls == std::vector<std::string>{"https://example.com/x"});
    CHECK(t.has_media);
    CHECK(t.lang == "es");
    CHECK(t.created_at_ms == 1446699939000);
    CHECK(t.in_reply_to == "662133652566835100");
    CHECK(t.retweet_of.empty());
    CHECK(t.user.id == "983741324");
    CHECK(t.user.screen_name == "maggi");
    CHECK(t.user.profile_image_url == "https://a/p.png");
    CHECK(t.user.followers_count == 321);
}

TEST_CASE("a v2 stream payload merges the author from includes.users", "[parser]") {
    const std::string line = R"({"data":{"author_id":"2","id":"1377650090978992134","created_at":"2021-04-01T15:52:31.000Z",
      "text":"RT @x: hi","lang":"en","referenced_tweets":[{"type":"retweeted","id":"555"}],
      "entities":{"hashtags":[{"start":0,"end":3,"tag":"cpp"}],"mentions":[{"username":"x"}]},
      "attachments":{"media_keys":["3_1"]}},
      "includes":{"users":[{"id":"1","username":"other"},{"id":"2","username":"alice","name":"Alice",
        "profile_image_url":"https://p/a.jpg","public_metrics":{"followers_count":77}}]},
      "matching_rules":[{"id":"9","tag":"cats"}]})";
    TweetParser parser;
    std::vector<Tweet> out;
    REQUIRE(parser.parse(line, out).kind == Kind::tweets);
    REQUIRE(out.size() == 1);
    CHECK(out[0].id == "1377650090978992134");
    CHECK(out[0].created_at_ms == 1617292351000);
    CHECK(out[0].retweet_of == "555");
    CHECK(out[0].hashtags == std::vector<std::string>{"cpp"});
    CHECK(out[0].mentions == std::vector<std::string>{"x"});
    CHECK(out[0].has_media);
    CHECK(out[0].user.screen_name == "alice");
    CHECK(out[0].user.name == "Alice");
    CHECK(out[0].user.followers_count == 77);
}

TEST_CASE("control messages, keep-alives and malformed lines are told apart, never taken for tweets", "[parser]") {
    TweetParser parser;
    std::vector<Tweet> out;
    CHECK(parser.parse("\r\n", out).kind == Kind::blank);
    CHECK(parser.parse("", out).kind == Kind::blank);
    auto control = [&](const char* line) {
        const auto o = parser.parse(line, out);
        CHECK(o.kind == Kind::control);
        return std::string(o.detail);
    };
    CHECK(control(R"({"delete":{"status":{"id":1,"id_str":"1","user_id":3}}})") == "delete");
    CHECK(control(R"({"limit":{"track":12,"timestamp_ms":"1"}})") == "limit");
    CHECK(control(R"({"warning":{"code":"FALLING_BEHIND","message":"x","percent_full":60}})") == "warning");
    CHECK(control(R"({"disconnect":{"code":7,"stream_name":"s","reason":"admin logout"}})") == "disconnect");
    CHECK(control(R"({"errors":[{"title":"operational-disconnect","type":"https://api.twitter.com/2/problems/operational-disconnect"}]})") == "error");
    auto malformed = [&](const std::string& line) {
        const auto o = parser.parse(line, out);
        CHECK(o.kind == Kind::malformed);
        return std::string(o.detail);
    };
    CHECK(malformed("not json at all") == "not a JSON object");
    CHECK(malformed("[1,2,3]") == "not a JSON object");
    CHECK_FALSE(malformed(R"({"id_str":"1","text":"cut off in the mid)").empty());
    CHECK(malformed(R"({"text":"no id here"})") == "no tweet id");
    CHECK(malformed(R"({"id_str":"","text":"empty id"})") == "tweet id is empty");
    CHECK(malformed(R"({"data":{"text":"v2 without id"}})") == "v2 \"data\" without a tweet id");
    CHECK_FALSE(malformed("{\"id_str\":\"1\",\"text\":\"bad utf8 \xff\xfe\"}").empty());
    CHECK(out.empty());
    // The parser is reusable after any failure.
    CHECK(parser.parse(R"({"id_str":"5","text":"fine"})", out).kind == Kind::tweets);
    CHECK(out.size() == 1);
}

TEST_CASE("Twitter's two time formats", "[parser]") {
    CHECK(parse_twitter_time("Thu Nov 05 05:05:39 +0000 2015") == 1446699939000);
    CHECK(parse_twitter_time("Thu Nov 05 07:05:39 +0200 2015") == 1446699939000);
    CHECK(parse_twitter_time("2021-04-01T15:52:31.000Z") == 1617292351000);
    CHECK(parse_twitter_time("2021-04-01T15:52:31Z") == 1617292351000);
    CHECK(parse_twitter_time("yesterday") == -1);
}

TEST_CASE("without created_at, a Snowflake id still gives the creation time", "[parser]") {
    TweetParser parser;
    std::vector<Tweet> out;
    // 1377650090978992134 was created at 2021-04-01T15:52:31Z (its v2 payload says so).
    REQUIRE(parser.parse(R"({"data":[{"id":"1377650090978992134","text":"no time field"}]})", out).kind == Kind::tweets);
    CHECK(out[0].created_at_ms / 1000 == 1617292351);
    REQUIRE(parser.parse(R"({"id_str":"20","text":"2006: ids before Snowflake carry no time"})", out).kind == Kind::tweets);
    CHECK(out[1].created_at_ms == 0);
}

TEST_CASE("every real tweet object in the shared data parses, control messages are counted and never taken as tweets",
          "[parser][shared-data]") {
    struct Expected {
        const char* file;
        std::size_t tweets;
        std::map<std::string, int> control;
    };
    const std::vector<Expected> files = {
        {"v1-stream.jsonl", 4447, {}},
        {"v1-stream-legacy.jsonl", 655, {}},
        {"v1-rest.jsonl", 688, {}},
        {"v1-sequence-filter.jsonl", 279, {{"limit", 20}}},
        {"v1-sequence-sample.jsonl", 209, {{"delete", 28}}},
        {"v2-stream.jsonl", 5, {{"error", 1}}},
        {"v2-tweets.jsonl", 990, {}},
        {"v2-pages.jsonl", 402, {}},
        {"control-messages.jsonl", 0, {{"limit", 40}, {"delete", 792}, {"disconnect", 2}}},
        {"control-messages-doc-examples.jsonl", 0,
         {{"delete", 5}, {"limit", 3}, {"scrub_geo", 3}, {"warning", 1}, {"status_withheld", 3},
          {"user_withheld", 3}, {"disconnect", 3}, {"control", 1}}},
    };
    SKIP_UNLESS_SHARED_FILE(test::shared_tweets_path(files[0].file));
    for (const auto& expected : files) {
        INFO(expected.file);
        const auto lines = test::shared_lines(expected.file);
        REQUIRE(!lines.empty());
        std::vector<Tweet> tweets;
        const Tally tally = parse_all(lines, &tweets);
        CHECK(tally.malformed.empty());
        CHECK(tally.tweets == expected.tweets);
        CHECK(tally.control == expected.control);
        for (const Tweet& t : tweets) {
            CHECK_FALSE(t.id.empty());
            CHECK(t.created_at_ms > 1000000000000);  // 2001 or later: every object carries a real time
        }
    }
}

namespace {
bool has_media_in(const nlohmann::json& j) {
    for (const char* key : {"entities", "extended_entities"})
        if (j.contains(key) && j[key].is_object() && j[key].contains("media") && !j[key]["media"].empty()) return true;
    return false;
}
}  // namespace

namespace {
// X's documented rules, spelled out independently of the parser: text and entities come
// from the retweeted Post for a Retweet, from extended_tweet when the text was
// truncated, with the API's &amp; &lt; &gt; undone once.
std::string unescaped(std::string text) {
    for (const auto& [entity, plain] : {std::pair{"&lt;", "<"}, {"&gt;", ">"}, {"&amp;", "&"}}) {
        for (std::size_t at = text.find(entity); at != std::string::npos; at = text.find(entity, at + 1))
            text.replace(at, std::strlen(entity), plain);
    }
    return text;
}

const nlohmann::json& full_form(const nlohmann::json& tweet) {
    return tweet.contains("extended_tweet") ? tweet["extended_tweet"] : tweet;
}

std::string full_text(const nlohmann::json& tweet) {
    const auto& full = full_form(tweet);
    return unescaped(full.contains("full_text") ? full["full_text"].get<std::string>() : full["text"].get<std::string>());
}

std::vector<std::string> hashtags_of(const nlohmann::json& tweet) {
    std::vector<std::string> tags;
    const auto& full = full_form(tweet);
    if (full.contains("entities"))
        for (const auto& h : full["entities"]["hashtags"]) tags.push_back(h["text"]);
    return tags;
}

bool is_object_at(const nlohmann::json& j, const char* key) { return j.contains(key) && j[key].is_object(); }
}  // namespace

TEST_CASE("v1.1 tweets yield full text, entities and media exactly as an independent JSON parser reads them",
          "[parser][shared-data]") {
    SKIP_UNLESS_SHARED_FILE(test::shared_tweets_path("v1-stream.jsonl"));
    std::vector<std::string> lines = test::shared_lines("v1-stream.jsonl");
    const auto rest = test::shared_lines("v1-rest.jsonl");
    REQUIRE(!rest.empty());
    lines.insert(lines.end(), rest.begin(), rest.end());
    TweetParser parser;
    int extended = 0, media = 0, retweets = 0, quotes = 0, escaped = 0;
    for (const auto& line : lines) {
        const auto j = nlohmann::json::parse(line);
        std::vector<Tweet> out;
        REQUIRE(parser.parse(line, out).kind == Kind::tweets);
        const bool retweet = is_object_at(j, "retweeted_status");
        const auto& source = retweet ? j["retweeted_status"] : j;  // X matches a Retweet on the original
        extended += source.contains("extended_tweet");
        std::vector<std::string> tags = hashtags_of(source);
        if (retweet)
            for (const auto& own : hashtags_of(j))
                if (std::find(tags.begin(), tags.end(), own) == tags.end()) tags.push_back(own);
        REQUIRE(out[0].hashtags == tags);
        auto media_of = [](const nlohmann::json& t) {
            return has_media_in(t) || (t.contains("extended_tweet") && has_media_in(t["extended_tweet"]));
        };
        const bool expect_media = media_of(j) || (retweet && media_of(source));
        REQUIRE(out[0].has_media == expect_media);
        media += expect_media;
        REQUIRE(out[0].text == full_text(source));
        escaped += full_text(source) != (full_form(source).contains("full_text") ? full_form(source)["full_text"]
                                                                                 : full_form(source)["text"]).get<std::string>();
        REQUIRE(out[0].id == j["id_str"].get<std::string>());
        REQUIRE(out[0].user.screen_name == j["user"].value("screen_name", ""));
        if (retweet) {
            ++retweets;
            REQUIRE(out[0].retweet_of == source["id_str"].get<std::string>());
            REQUIRE(out[0].retweet_of_user == source["user"]["screen_name"].get<std::string>());
        } else {
            REQUIRE(out[0].retweet_of.empty());
        }
        const nlohmann::json* quoted = is_object_at(j, "quoted_status")        ? &j["quoted_status"]
                                       : is_object_at(source, "quoted_status") ? &source["quoted_status"]
                                                                               : nullptr;
        REQUIRE(out[0].quoted.has_value() == (quoted != nullptr));
        if (quoted) {
            ++quotes;
            REQUIRE(out[0].quoted->id == (*quoted)["id_str"].get<std::string>());
            REQUIRE(out[0].quoted->text == full_text(*quoted));
            REQUIRE(out[0].quoted->hashtags == hashtags_of(*quoted));
            REQUIRE(out[0].quoted->screen_name == (*quoted)["user"]["screen_name"].get<std::string>());
        }
    }
    CHECK(extended >= 478);  // v1-stream.jsonl alone holds 478: the cross-check covered extended tweets
    CHECK(media > 100);
    CHECK(retweets > 1000);
    CHECK(quotes > 400);
    CHECK(escaped > 100);
}

TEST_CASE("the published tweet form reads back into the same Tweet (spool replay, stores)", "[parser]") {
    TweetParser parser;
    std::vector<Tweet> originals;
    for (const char* line : {R"({"id_str":"1500000000000000001","text":"héllo #Cats @bob https://t.co/x","lang":"en",
          "timestamp_ms":"1446699939123","in_reply_to_status_id_str":"77","in_reply_to_screen_name":"carol",
          "user":{"id_str":"42","screen_name":"alice","name":"Alice","followers_count":7,"profile_image_url_https":"https://p"},
          "retweeted_status":{"id_str":"66"},
          "entities":{"hashtags":[{"text":"Cats"}],"user_mentions":[{"screen_name":"bob"}],
                      "urls":[{"url":"https://t.co/x","expanded_url":"https://example.com"}],"media":[{"type":"photo"}]}})",
                             R"({"id_str":"2","text":"plain"})",
                             R"({"id_str":"3","text":"Q&amp;A &amp;lt;b&amp;gt; RT @x: trunc…","user":{"screen_name":"z"},
          "retweeted_status":{"id_str":"30","text":"Q&amp;A &amp;lt;b&amp;gt; full","user":{"screen_name":"orig"},
            "quoted_status":{"id_str":"31","text":"quoted &lt;3 #Tag","user":{"screen_name":"q","name":"Q"},
                             "entities":{"hashtags":[{"text":"Tag"}],"urls":[{"expanded_url":"https://e.com"}]}}}})"}) {
        REQUIRE(parser.parse(line, originals).kind == Kind::tweets);
    }
    REQUIRE(originals.size() == 3);
    CHECK(originals[2].text == "Q&A &lt;b&gt; full");  // unescaped once, from the retweeted Post
    CHECK(originals[2].retweet_of == "30");
    CHECK(originals[2].retweet_of_user == "orig");
    REQUIRE(originals[2].quoted);
    CHECK(originals[2].quoted->text == "quoted <3 #Tag");
    CHECK(originals[2].quoted->hashtags == std::vector<std::string>{"Tag"});
    CHECK(originals[2].quoted->urls == std::vector<std::string>{"https://e.com"});
    for (const Tweet& original : originals) {
        std::string json;
        append_tweet_json(json, original);
        std::vector<Tweet> back;
        INFO(json);
        REQUIRE(parser.parse(json, back).kind == Kind::tweets);
        REQUIRE(back.size() == 1);
        CHECK(back[0] == original);
    }
}

TEST_CASE("delete notices: v1.1 and v2 compliance events name the deleted tweet", "[parser]") {
    TweetParser parser;
    std::vector<Tweet> out;
    const ParseOutcome v1 = parser.parse(
        R"({"delete":{"status":{"id":1234567890123456789,"id_str":"1234567890123456789","user_id":3},"timestamp_ms":"1446699939000"}})",
        out);
    CHECK(v1.kind == Kind::control);
    CHECK(std::string(v1.detail) == "delete");
    CHECK(v1.deleted_id == "1234567890123456789");
    const ParseOutcome legacy = parser.parse(R"({"delete":{"status":{"id":42,"user_id":3}}})", out);
    CHECK(legacy.deleted_id == "42");
    const ParseOutcome v2 = parser.parse(
        R"({"data":{"delete":{"tweet":{"id":"1500000000000000465","author_id":"9"},"event_at":"2021-04-01T15:52:31.000Z"}}})",
        out);
    CHECK(v2.kind == Kind::control);
    CHECK(std::string(v2.detail) == "delete");
    CHECK(v2.deleted_id == "1500000000000000465");
    CHECK(out.empty());
    CHECK(parser.parse(R"({"limit":{"track":5}})", out).deleted_id.empty());
}

TEST_CASE("delete notices: every real one in the shared data names its tweet", "[parser][shared-data]") {
    SKIP_UNLESS_SHARED_FILE(test::shared_tweets_path("control-messages.jsonl"));
    TweetParser parser;
    std::vector<Tweet> out;
    std::size_t deletes = 0;
    for (const auto& line : test::shared_lines("control-messages.jsonl")) {
        if (line.find("\"delete\"") == std::string::npos) continue;
        const ParseOutcome o = parser.parse(line, out);
        INFO(line);
        CHECK(!o.deleted_id.empty());
        CHECK(o.deleted_id.find_first_not_of("0123456789") == std::string::npos);
        ++deletes;
    }
    CHECK(deletes >= 700);
    CHECK(out.empty());
}

TEST_CASE("retweet and like counts: v1.1 at the top level, v2 in public_metrics, a Retweet's from the original, "
          "our form round trip, and no count where the source sent none or nonsense", "[parser]") {
    TweetParser parser;
    std::vector<Tweet> out;
    const auto parse_one = [&](const std::string& line) {
        out.clear();
        REQUIRE(parser.parse(line, out).kind == Kind::tweets);
        REQUIRE(out.size() == 1);
        return out[0];
    };
    const Tweet v1 = parse_one(R"({"id_str":"10","text":"a","user":{"id_str":"1","screen_name":"a"},
                                   "retweet_count":12,"favorite_count":34})");
    CHECK(v1.retweet_count == 12);
    CHECK(v1.like_count == 34);

    const Tweet v2 = parse_one(R"({"data":{"id":"11","text":"b","author_id":"2",
                                   "public_metrics":{"retweet_count":5,"reply_count":1,"like_count":6,"quote_count":0}},
                                   "includes":{"users":[{"id":"2","username":"b","public_metrics":{"followers_count":9}}]}})");
    CHECK(v2.retweet_count == 5);
    CHECK(v2.like_count == 6);
    CHECK(v2.user.followers_count == 9);

    const Tweet retweet = parse_one(R"({"id_str":"12","text":"RT @o: c","user":{"id_str":"3","screen_name":"r"},
                                        "retweet_count":0,"favorite_count":0,
                                        "retweeted_status":{"id_str":"9","text":"c","retweet_count":700,
                                          "favorite_count":900,"user":{"id_str":"4","screen_name":"o"}}})");
    CHECK(retweet.retweet_count == 700);
    CHECK(retweet.like_count == 900);

    const Tweet none = parse_one(R"({"id_str":"13","text":"d","user":{"id_str":"5","screen_name":"d"},
                                     "retweet_count":"100+","favorite_count":-3})");
    CHECK_FALSE(none.retweet_count);
    CHECK_FALSE(none.like_count);

    for (const Tweet& t : {v1, none}) {
        std::string json;
        append_tweet_json(json, t);
        INFO(json);
        CHECK(parse_one(json) == t);
    }
    std::string json;
    append_tweet_json(json, none);
    CHECK(json.find(R"("retweet_count":null,"like_count":null)") != std::string::npos);
}
