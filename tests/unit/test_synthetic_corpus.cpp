#include "common/tweet_parser.h"
#include "ingest/sources/synthetic_corpus.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <iterator>
#include <map>
#include <set>

using namespace birdwatch;

TEST_CASE("the synthetic corpus is deterministic for a seed and differs across seeds", "[synthetic]") {
    SyntheticCorpus a(7, 1700000000000, 10), b(7, 1700000000000, 10), c(8, 1700000000000, 10);
    bool differs = false;
    for (int i = 0; i < 200; ++i) {
        const std::string line = a.next();
        CHECK(line == b.next());
        differs |= line != c.next();
    }
    CHECK(differs);
}

TEST_CASE("synthetic tweets parse as realistic v1.1 tweets", "[synthetic]") {
    SyntheticCorpus corpus(1, 1700000000000, 10);
    TweetParser parser;
    std::vector<Tweet> tweets;
    for (int i = 0; i < 10000; ++i) {
        const auto outcome = parser.parse(corpus.next(), tweets);
        REQUIRE(outcome.kind == ParseOutcome::Kind::tweets);
    }
    REQUIRE(tweets.size() == 10000);
    std::map<std::string, int> langs;
    std::set<std::string> users;
    int retweets = 0, replies = 0, with_tags = 0, with_mentions = 0, with_urls = 0, with_media = 0;
    for (std::size_t i = 0; i < tweets.size(); ++i) {
        const Tweet& t = tweets[i];
        if (i > 0) CHECK(std::stoull(t.id) > std::stoull(tweets[i - 1].id));  // ids grow, as real ones do
        CHECK(t.created_at_ms == 1700000000000 + static_cast<std::int64_t>(i) * 10);
        CHECK_FALSE(t.text.empty());
        CHECK_FALSE(t.user.screen_name.empty());
        ++langs[t.lang];
        users.insert(t.user.id);
        retweets += !t.retweet_of.empty();
        replies += !t.in_reply_to.empty();
        with_tags += !t.hashtags.empty();
        with_mentions += !t.mentions.empty();
        with_urls += !t.urls.empty();
        with_media += t.has_media;
        for (const auto& tag : t.hashtags) CHECK(t.text.find("#" + tag) != std::string::npos);
        if (!t.retweet_of.empty()) {  // shown and matched by the original's text, marked with its author
            CHECK(t.text.rfind("RT @", 0) != 0);
            CHECK_FALSE(t.retweet_of_user.empty());
        }
    }
    CHECK(langs.size() == 6);
    CHECK(langs["en"] > langs["es"]);
    CHECK(users.size() > 1000);
    CHECK(retweets > 2000);
    CHECK(replies > 500);
    CHECK(with_tags > 2000);
    CHECK(with_mentions > 2000);
    CHECK(with_urls > 1000);
    CHECK(with_media > 100);
}

TEST_CASE("synthetic ids follow X's Snowflake layout: the same for a start time, new for a later start",
          "[synthetic]") {
    TweetParser parser;
    auto ids = [&](std::int64_t start_ms) {
        SyntheticCorpus corpus(1, start_ms, 20);
        std::vector<Tweet> tweets;
        for (int i = 0; i < 3000; ++i) parser.parse(corpus.next(), tweets);
        std::set<std::string> out;
        for (const auto& t : tweets) {
            out.insert(t.id);
            // The id's time part is the tweet's created_at, as in X's ids.
            CHECK(static_cast<std::int64_t>(std::stoull(t.id) >> 22) + 1288834974657 == t.created_at_ms);
        }
        CHECK(out.size() == tweets.size());  // unique within a run
        return out;
    };
    const auto first = ids(1700000000000);
    CHECK(ids(1700000000000) == first);  // deterministic for a seed and start time
    // A restart one minute later (3,000 tweets at 50/s took one minute): no id repeats.
    const auto restarted = ids(1700000060000);
    std::vector<std::string> shared;
    std::set_intersection(first.begin(), first.end(), restarted.begin(), restarted.end(), std::back_inserter(shared));
    CHECK(shared.empty());
}
