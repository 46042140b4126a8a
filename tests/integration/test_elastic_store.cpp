// The ElasticSearch backend against a local server speaking the documented ES REST
// API (tests/support/fake_elastic): not a real cluster, which cannot be installed here.

#include "bench/workload.h"
#include "common/query/matcher.h"
#include "common/store/elastic_store.h"
#include "tests/support/fake_elastic.h"
#include "tests/support/process.h"
#include "tests/support/stored_tweets.h"

#include <catch2/catch.hpp>
#include <curl/curl.h>

using namespace birdwatch;
using namespace birdwatch::test;
using namespace std::chrono_literals;

namespace {

struct Recorder {
    std::vector<std::chrono::milliseconds> sleeps;
    std::function<void(std::chrono::milliseconds)> sleeper() {
        return [this](std::chrono::milliseconds d) { sleeps.push_back(d); };
    }
};

}  // namespace

TEST_CASE("elasticsearch: mixed per-item failures, 429s and slow responses still store every tweet exactly once",
          "[persistence][elastic]") {
    FakeElastic es;
    Recorder recorder;
    ElasticStore store({es.url(), "tweets", "", "", "", 10000, 5, 500ms, 30000ms, recorder.sleeper()});
    REQUIRE(store.ensure_template().ok());
    CHECK(es.has_template("tweets"));
    REQUIRE(store.ensure_template().ok());  // present: not created again
    std::size_t puts = 0;
    for (const auto& r : es.requests()) puts += r.method == "PUT";
    CHECK(puts == 1);

    const auto rows = stored(workload::synthetic_tweets(3000, 12));
    es.fail_item(rows[10].tweet.id, {429, 429});
    es.fail_item(rows[20].tweet.id, {503});
    es.fail_item(rows[1500].tweet.id, {429});
    es.fail_item(rows[30].tweet.id, {400});  // permanent: reported, never retried
    es.fail_requests({429});                 // the first bulk request is refused as a whole
    es.delay_responses(50ms);

    for (std::size_t i = 0; i < rows.size(); i += 1000) {
        const StoreStatus status = store.write(std::span(rows).subspan(i, 1000));
        INFO(status.message);
        REQUIRE(status.ok());
        CHECK(status.duplicates == 0);
        if (i == 0) {
            REQUIRE(status.rejections.size() == 1);
            CHECK(status.rejections[0] == rows[30].tweet.id + ": mapper_parsing_exception: failed to parse field [created_at]");
        } else {
            CHECK(status.rejections.empty());
        }
    }
    CHECK(es.documents() == 2999);
    for (const auto& [id, ops] : es.index_ops()) {
        INFO(id);
        CHECK(ops == 1);  // retries resend only what failed
    }
    // Batch 1: whole request 429 (500 ms), then items 10+20 (1 s), then item 10 again (2 s). Batch 2: item 1500 (500 ms).
    CHECK(recorder.sleeps == std::vector<std::chrono::milliseconds>{500ms, 1000ms, 2000ms, 500ms});
    const auto bulk = es.requests().back();
    CHECK(bulk.headers.at("content-type") == "application/x-ndjson");
    CHECK(bulk.body.back() == '\n');

    StoreStatus status;
    CHECK(store.count(status) == 2999);
    CHECK(store.get(rows[7].tweet.id, status) == rows[7].json);
    CHECK_FALSE(store.get(rows[30].tweet.id, status).has_value());
    CHECK(status.ok());

    // Written again (a replayed spool): ES answers "updated" for what it holds, each counted
    // as a duplicate; row 30, refused before, is taken now.
    const StoreStatus again = store.write(std::span(rows).subspan(0, 100));
    REQUIRE(again.ok());
    CHECK(again.duplicates == 99);
    CHECK(again.rejections.empty());
    CHECK(es.documents() == 3000);
}

TEST_CASE("elasticsearch: a request that keeps failing, and a refused connection, are reported as unavailable",
          "[persistence][elastic]") {
    FakeElastic es;
    Recorder recorder;
    ElasticStore store({es.url(), "tweets", "", "", "", 10000, 3, 100ms, 30000ms, recorder.sleeper()});
    const auto rows = stored(workload::synthetic_tweets(10, 2));
    es.fail_requests({503, 503, 503});
    const StoreStatus busy = store.write(rows);
    CHECK(busy.code == StoreStatus::Code::unavailable);
    CHECK(recorder.sleeps == std::vector<std::chrono::milliseconds>{100ms, 200ms});
    CHECK(es.documents() == 0);
    CHECK(store.write(rows).ok());  // and later it goes through
    CHECK(es.documents() == 10);

    ElasticStore nowhere({"http://127.0.0.1:" + std::to_string(free_port()), "tweets", "", "", "", 2000, 2, 10ms, 100ms,
                          recorder.sleeper()});
    const StoreStatus refused = nowhere.write(rows);
    CHECK(refused.code == StoreStatus::Code::unavailable);
    CHECK(refused.message.find("Couldn't connect") != std::string::npos);
    CHECK_FALSE(nowhere.ensure_template().ok());
}

TEST_CASE("elasticsearch: history through _search equals brute force, newest first, across pages",
          "[persistence][elastic]") {
    FakeElastic es;
    ElasticOptions options;
    options.url = es.url();
    options.index = "tweets";
    ElasticStore store(options);
    const std::vector<Tweet> tweets = workload::synthetic_tweets(3000, 31);
    const auto rows = stored(tweets);
    REQUIRE(store.write(rows).ok());
    workload::QueryGenerator generator(tweets, 8);
    std::vector<std::string> queries = {"#music -is:retweet", "(amor OR liebe) lang:de", "coffee has:links",
                                        "from:" + tweets[10].user.screen_name, "\"hoy amor\" OR -(x) vida"};
    while (queries.size() < 15) queries.push_back(generator.next());
    for (const std::string& text : queries) {
        INFO(text);
        const QueryParse q = parse_query(text);
        REQUIRE(q.query);
        std::vector<std::string> expected;
        for (std::size_t i = tweets.size(); i-- > 0;)
            if (matches(q.query->root, extract_features(tweets[i]))) expected.push_back(rows[i].json);
        std::vector<std::string> got;
        std::uint64_t before = 0;
        StoreStatus status;
        for (int page = 0; page < 100; ++page) {
            const HistoryPage p = store.history(*q.query, {PageRequest::Order::newest_first, 25, before}, status);
            REQUIRE(status.ok());
            got.insert(got.end(), p.tweets.begin(), p.tweets.end());
            if (p.next == 0) break;
            before = p.next;
        }
        CHECK(got == expected);
        // Oldest first (resume), from a tweet in the middle.
        const std::uint64_t after = std::stoull(tweets[tweets.size() / 2].id);
        std::vector<std::string> forward;
        for (std::size_t i = tweets.size() / 2 + 1; i < tweets.size(); ++i)
            if (matches(q.query->root, extract_features(tweets[i]))) forward.push_back(rows[i].json);
        got.clear();
        for (std::uint64_t cursor = after;;) {
            const HistoryPage p = store.history(*q.query, {PageRequest::Order::oldest_first, 25, 0, cursor}, status);
            REQUIRE(status.ok());
            got.insert(got.end(), p.tweets.begin(), p.tweets.end());
            if (p.next == 0) break;
            cursor = p.next;
        }
        CHECK(got == forward);
    }
}
