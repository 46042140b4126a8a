#include "bench/workload.h"
#include "common/query/matcher.h"
#include "common/store/sqlite_store.h"
#include "tests/support/process.h"
#include "tests/support/stored_tweets.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/query/tokens.h"

#include <algorithm>
#include <map>
#include <sqlite3.h>

using namespace birdwatch;
using birdwatch::test::stored;

namespace {

std::string id_of(const std::string& json) { return nlohmann::json::parse(json)["id"]; }

}  // namespace

TEST_CASE("sqlite: 100,000 tweets, history equals brute force newest first across pages, get and count are exact",
          "[persistence]") {
    test::TempDir dir;
    SqliteStore store({dir.file("tweets.db")});
    const std::vector<Tweet> tweets = workload::synthetic_tweets(100000, 21);
    const std::vector<StoredTweet> rows = stored(tweets);
    for (std::size_t i = 0; i < rows.size(); i += 1000)
        REQUIRE(store.write(std::span(rows).subspan(i, std::min<std::size_t>(1000, rows.size() - i))).ok());
    REQUIRE(store.write(std::span(rows).subspan(0, 500)).ok());  // rewriting is a no-op
    StoreStatus status;
    CHECK(store.count(status) == 100000);
    CHECK(status.ok());
    CHECK(store.get(tweets[777].id, status) == rows[777].json);
    CHECK_FALSE(store.get("1", status).has_value());
    CHECK(status.ok());

    workload::QueryGenerator generator(std::vector<Tweet>(tweets.begin(), tweets.begin() + 2000), 5);
    std::vector<std::string> queries = {"#music -is:retweet", "\"hoy amor\"", "from:" + tweets[10].user.screen_name,
                                        "(amor OR liebe) lang:de", "to:" + tweets[1234].in_reply_to_user + " OR #anime",
                                        "coffee has:links", "nonexistentword"};
    while (queries.size() < 30) queries.push_back(generator.next());
    std::vector<TweetFeatures> features;
    for (const Tweet& t : tweets) features.push_back(extract_features(t));
    for (const std::string& text : queries) {
        INFO("query: " << text);
        const QueryParse q = parse_query(text);
        REQUIRE(q.query);
        std::vector<std::string> expected;  // brute force, newest first (ids ascend with time)
        for (std::size_t i = tweets.size(); i-- > 0;)
            if (matches(q.query->root, features[i])) expected.push_back(tweets[i].id);
        std::vector<std::string> got;
        std::uint64_t before = 0;
        for (int page = 0; page < 400; ++page) {
            HistoryPage p = store.history(*q.query, {PageRequest::Order::newest_first, 100, before, 0, SIZE_MAX}, status);
            REQUIRE(status.ok());
            for (const auto& json : p.tweets) got.push_back(id_of(json));
            if (p.next == 0) break;
            REQUIRE(p.tweets.size() == 100);
            before = p.next;
        }
        if (expected.size() > 40000) expected.resize(got.size());  // very broad queries: 400 pages checked
        CHECK(got == expected);
        // Oldest first from the middle (resume), with the default scan budget: pages may
        // come back short but carry the cursor, and the walk still yields every match once.
        const std::size_t middle = tweets.size() - 2000;
        std::vector<std::string> forward;
        for (std::size_t i = middle + 1; i < tweets.size(); ++i)
            if (matches(q.query->root, features[i])) forward.push_back(tweets[i].id);
        std::vector<std::string> walked;
        std::uint64_t cursor = std::stoull(tweets[middle].id);
        for (int page = 0; page < 1000 && cursor != 0; ++page) {
            HistoryPage p = store.history(*q.query, {PageRequest::Order::oldest_first, 100, 0, cursor, 500}, status);
            REQUIRE(status.ok());
            REQUIRE(p.tweets.size() <= 100);
            for (const auto& json : p.tweets) walked.push_back(id_of(json));
            cursor = p.next;
        }
        CHECK(walked == forward);
        // Between two bounds (resume stops where live delivery began).
        const std::uint64_t until = std::stoull(tweets[middle + 1000].id);
        std::vector<std::string> bounded;
        for (std::size_t i = middle + 1; i <= middle + 1000; ++i)
            if (matches(q.query->root, features[i])) bounded.push_back(tweets[i].id);
        walked.clear();
        cursor = std::stoull(tweets[middle].id);
        for (int page = 0; page < 1000 && cursor != 0; ++page) {
            HistoryPage p = store.history(*q.query, {PageRequest::Order::oldest_first, 100, until + 1, cursor, 500}, status);
            for (const auto& json : p.tweets) walked.push_back(id_of(json));
            cursor = p.next;
        }
        CHECK(walked == bounded);
    }
}

TEST_CASE("sqlite: retention by age and by row count, and a second writer's lock is reported as unavailable",
          "[persistence]") {
    test::TempDir dir;
    const std::string path = dir.file("tweets.db");
    SqliteStore store({path, false, std::chrono::milliseconds(100)});
    const std::vector<Tweet> tweets = workload::synthetic_tweets(1000, 3);  // created 10 ms apart
    const auto rows = stored(tweets);
    REQUIRE(store.write(rows).ok());
    StoreStatus status;
    CHECK(store.enforce_retention(tweets[100].created_at_ms, 0, status) == 100);
    CHECK(store.count(status) == 900);
    CHECK(store.enforce_retention(0, 500, status) == 400);
    CHECK(store.count(status) == 500);
    CHECK(store.get(tweets[499].id, status) == std::nullopt);
    CHECK(store.get(tweets[500].id, status).has_value());
    const QueryParse everything = parse_query(tweets[200].user.screen_name.empty() ? "x" : "from:" + tweets[600].user.screen_name);
    CHECK_FALSE(store.history(*everything.query, {PageRequest::Order::newest_first, 10}, status).tweets.empty());

    sqlite3* other = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &other) == SQLITE_OK);
    REQUIRE(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
    const StoreStatus locked = store.write(rows);
    CHECK(locked.code == StoreStatus::Code::unavailable);
    CHECK(locked.message.find("locked") != std::string::npos);
    sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(other);
    CHECK(store.write(rows).ok());
    CHECK(store.count(status) == 1000);

    SqliteStore reader({path, true});
    CHECK(reader.count(status) == 1000);
    CHECK(reader.write(rows).code == StoreStatus::Code::rejected);
}

TEST_CASE("sqlite: a page looks at no more rows than its budget and says where to go on", "[persistence][hardening]") {
    test::TempDir dir;
    SqliteStore store({dir.file("tweets.db")});
    const std::vector<Tweet> tweets = workload::synthetic_tweets(20000, 5);
    const std::vector<StoredTweet> rows = stored(tweets);
    REQUIRE(store.write(rows).ok());
    // The most common token: every tweet holding it is an FTS candidate, and lang:xx turns each one down.
    std::map<std::string, int> counts;
    std::vector<std::string> tokens;
    for (std::size_t i = 0; i < 2000; ++i) {
        tokens.clear();
        tokenize(tweets[i].text, tokens);
        for (const auto& t : tokens) ++counts[t];
    }
    const auto common = std::max_element(counts.begin(), counts.end(),
                                         [](const auto& a, const auto& b) { return a.second < b.second; });
    const QueryParse q = parse_query("\"" + common->first + "\" lang:xx");
    REQUIRE(q.query);
    StoreStatus status;
    HistoryPage page = store.history(*q.query, {PageRequest::Order::newest_first, 20, 0, 0, 1000}, status);
    REQUIRE(status.ok());
    CHECK(page.tweets.empty());
    REQUIRE(page.next != 0);  // cut short: not the end
    int pages = 1;
    while (page.next != 0 && pages < 1000) {
        page = store.history(*q.query, {PageRequest::Order::newest_first, 20, page.next, 0, 1000}, status);
        CHECK(page.tweets.empty());
        ++pages;
    }
    CHECK(page.next == 0);  // the walk ends
    CHECK(pages >= common->second * 10 / 1000);  // the candidates were really spread over budgeted pages
}

TEST_CASE("sqlite: a tweet with an unusable id is rejected with its reason, a repeated id counts as a duplicate",
          "[persistence]") {
    test::TempDir dir;
    SqliteStore store({dir.file("tweets.db")});
    std::vector<Tweet> tweets = workload::synthetic_tweets(5, 3);
    tweets[1].id = "abc";
    tweets[2].id = "-5";
    std::vector<StoredTweet> rows = stored(tweets);
    rows.push_back(rows[0]);  // repeated within the batch
    StoreStatus status = store.write(rows);
    REQUIRE(status.ok());
    REQUIRE(status.rejections.size() == 2);
    CHECK(status.rejections[0] == "abc: not a positive 64-bit decimal id");
    CHECK(status.rejections[1] == "-5: not a positive 64-bit decimal id");
    CHECK(status.duplicates == 1);
    CHECK(store.count(status) == 3);  // 6 written = 3 stored + 2 rejected + 1 duplicate
    // The same batch again: everything stored is now a duplicate.
    status = store.write(rows);
    CHECK(status.rejections.size() == 2);
    CHECK(status.duplicates == 4);
    CHECK(store.count(status) == 3);
}
