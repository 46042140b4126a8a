// Fanout reads backed by the ingest's real SQLite file (opened read-only): history
// paging, get, and resume on another replica after the first one is killed.

#include "common/store/sqlite_store.h"
#include "tests/support/daemons.h"
#include "tests/support/live_search.h"
#include "tests/support/redis_server.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <set>

using namespace birdwatch;
using namespace birdwatch::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

json ask(WsClient& client, const json& message, const std::string& reply_type) {
    const std::size_t before = client.message_count();
    client.send(message.dump());
    json reply;
    REQUIRE(wait_until([&] {
        const auto messages = client.messages();
        for (std::size_t i = before; i < messages.size(); ++i) {
            const json m = json::parse(messages[i]);
            if (m["type"] == reply_type || m["type"] == "error") {
                reply = m;
                return true;
            }
        }
        return false;
    }, 10s));
    INFO(reply.dump());
    REQUIRE(reply["type"] == reply_type);
    return reply;
}

std::uint64_t id_of(const json& tweet) { return std::stoull(tweet["id"].get<std::string>()); }

}  // namespace

TEST_CASE("fanout store reads: history pages, get, and resume on the other replica after a kill miss nothing stored",
          "[fanout][persistence]") {
    TempDir dir;
    RedisServer redis(dir);
    const std::string db = dir.file("ingest.db");
    ChildProcess ingest = start_ingest(dir, "ingest", redis.port(), {"--source.synthetic.rate=400"});
    REQUIRE(wait_until([&] { return std::ifstream(db).good(); }, 10s));
    const std::vector<std::string> store_flags = {"--store.kind=sqlite", "--store.sqlite.path=" + db};
    const unsigned short ports[2] = {free_port(), free_port()};
    ChildProcess fanout_a = start_fanout(dir, "fanout-a", redis.port(), ports[0], store_flags);
    ChildProcess fanout_b = start_fanout(dir, "fanout-b", redis.port(), ports[1], store_flags);

    const std::string query = "the OR hoy OR heute";
    WsIo io;
    WsClient client(io);
    REQUIRE(client.connect(ports[0]));
    const std::string qid = subscribe(client, query);
    REQUIRE(wait_until([&] { return tweet_payloads(client).size() >= 40; }, 10s));
    // Deliveries can run ahead of the store: wait until it holds what was delivered.
    SqliteStore store({db, true});
    auto in_store = [&](const std::string& payload) {
        StoreStatus status;
        return store.get(json::parse(payload)["tweet"]["id"].get<std::string>(), status).has_value();
    };
    REQUIRE(wait_until([&] { return in_store(tweet_payloads(client).back()); }, 10s));

    // A subscription's history ends where its live delivery began: nothing in both.
    const json before_live = ask(client, {{"type", "history"}, {"qid", qid}, {"size", 100}}, "history");
    std::set<std::uint64_t> live_ids;
    for (const auto& payload : tweet_payloads(client)) live_ids.insert(id_of(json::parse(payload)["tweet"]));
    for (const auto& t : before_live["tweets"]) {
        CHECK(id_of(t) < *live_ids.begin());
        CHECK_FALSE(live_ids.count(id_of(t)));
    }

    // History of a query: newest first, pages that continue exactly where the last one stopped.
    const json first = ask(client, {{"type", "history"}, {"query", query}, {"size", 10}}, "history");
    REQUIRE(first["tweets"].size() == 10);
    const json second = ask(client, {{"type", "history"}, {"query", query}, {"size", 10}, {"before", first["next_before"]}}, "history");
    REQUIRE(second["tweets"].size() == 10);
    std::vector<std::uint64_t> paged;
    for (const auto* page : {&first, &second})
        for (const auto& t : (*page)["tweets"]) {
            Tweet tweet = tweet_from_payload(json{{"tweet", t}}.dump());
            CHECK(query_matches(query, tweet));
            paged.push_back(id_of(t));
        }
    for (std::size_t i = 1; i < paged.size(); ++i) CHECK(paged[i] < paged[i - 1]);
    CHECK(ask(client, {{"type", "history"}, {"query", "zzzznothing"}}, "history")["tweets"].empty());

    // Get: a stored tweet, and a missing one.
    const json live_first = json::parse(tweet_payloads(client)[0]);
    const json found = ask(client, {{"type", "get"}, {"id", live_first["tweet"]["id"]}}, "found");
    CHECK(found["tweet"] == live_first["tweet"]);
    CHECK(ask(client, {{"type", "get"}, {"id", "1"}}, "not_found")["id"] == "1");
    CHECK(ask(client, {{"type", "resume"}, {"qid", parse_query("nothere").query->id}, {"since_id", "1"}}, "error")["code"] ==
          "not_subscribed");

    // The replica dies; tweets keep coming while the client is away.
    std::set<std::uint64_t> seen;
    for (const auto& p : tweet_payloads(client)) seen.insert(id_of(json::parse(p)["tweet"]));
    const std::uint64_t last_seen = *seen.rbegin();
    fanout_a.kill();
    REQUIRE(wait_until([&] { return !client.is_open(); }, 5s));
    // Tweets go on while the client is away: more than a page of matches is missed.
    const ParsedQuery missed_query = *parse_query(query).query;
    REQUIRE(wait_until([&] {
        StoreStatus status;
        return store.history(missed_query, {PageRequest::Order::oldest_first, 200, 0, last_seen, SIZE_MAX}, status)
                   .tweets.size() > 100;  // store.max_page
    }, 20s));

    WsClient again(io);
    REQUIRE(again.connect(ports[1]));
    CHECK(subscribe(again, query) == qid);
    // Resumed pages, oldest first, each after the last: follow next_since until it is null.
    std::size_t resumed_count = 0, pages = 0;
    std::uint64_t previous = last_seen;
    for (std::string since = std::to_string(last_seen); !since.empty() && pages < 100; ++pages) {
        const json resumed = ask(again, {{"type", "resume"}, {"qid", qid}, {"since_id", since}}, "resumed");
        REQUIRE(resumed["tweets"].size() <= 100);  // store.max_page
        for (const auto& t : resumed["tweets"]) {
            CHECK(id_of(t) > previous);  // oldest first, all after since_id
            previous = id_of(t);
            seen.insert(id_of(t));
            ++resumed_count;
        }
        since = resumed["next_since"].is_string() ? resumed["next_since"].get<std::string>() : "";
    }
    CHECK(pages > 1);  // more than a page was missed: the walk went on
    REQUIRE(resumed_count > 100);  // all that was missed
    REQUIRE(wait_until([&] { return tweet_payloads(again).size() >= 20; }, 10s));
    const std::vector<std::string> live_again = tweet_payloads(again);
    for (const auto& p : live_again) seen.insert(id_of(json::parse(p)["tweet"]));  // merged by id
    const std::uint64_t newest = *seen.rbegin();
    REQUIRE(wait_until([&] { return in_store(live_again.back()); }, 10s));

    // Every stored tweet matching the query between the first one seen and the newest is in the client's timeline.
    StoreStatus status;
    const QueryParse q = parse_query(query);
    std::vector<std::uint64_t> stored;
    std::uint64_t before = newest + 1;
    while (true) {
        const HistoryPage page = store.history(*q.query, {PageRequest::Order::newest_first, 200, before, 0, SIZE_MAX}, status);
        REQUIRE(status.ok());
        bool done = page.next == 0;
        for (const auto& t : page.tweets) {
            const std::uint64_t id = id_of(json::parse(t));
            if (id < *seen.begin()) {
                done = true;
                break;
            }
            stored.push_back(id);
        }
        if (done) break;
        before = page.next;
    }
    REQUIRE(stored.size() > 100);
    std::size_t missing = 0;
    for (std::uint64_t id : stored) missing += !seen.count(id);
    CHECK(missing == 0);
}

TEST_CASE("stats every interval: users across all replicas, tweets stored, tweets per second", "[fanout][persistence]") {
    TempDir dir;
    RedisServer redis(dir);
    const std::string db = dir.file("ingest.db");
    ChildProcess ingest = start_ingest(dir, "ingest", redis.port(), {"--source.synthetic.rate=200"});
    REQUIRE(wait_until([&] { return std::ifstream(db).good(); }, 10s));
    const std::vector<std::string> flags = {"--store.kind=sqlite", "--store.sqlite.path=" + db, "--stats.interval_ms=300"};
    const unsigned short ports[2] = {free_port(), free_port()};
    ChildProcess fanout_a = start_fanout(dir, "fanout-a", redis.port(), ports[0], flags);
    ChildProcess fanout_b = start_fanout(dir, "fanout-b", redis.port(), ports[1], flags);
    WsIo io;
    std::vector<WsClient> clients;
    for (int i = 0; i < 5; ++i) {
        clients.emplace_back(io);
        REQUIRE(clients.back().connect(ports[i < 3 ? 0 : 1]));
    }
    auto latest_stats = [&](const WsClient& c) {
        json last;
        for (const auto& m : c.messages()) {
            const json j = json::parse(m);
            if (j["type"] == "stats") last = j;
        }
        return last;
    };
    REQUIRE(wait_until([&] {
        const json a = latest_stats(clients[0]), b = latest_stats(clients[4]);
        return !a.is_null() && !b.is_null() && a["users"] == 5 && b["users"] == 5 && a["tweets_per_second"] > 50;
    }, 10s));
    const json s = latest_stats(clients[4]);
    INFO(s.dump());
    CHECK(s["v"] == 1);
    CHECK(s["tweets_stored"].get<std::uint64_t>() > 0);
    CHECK(s["tweets_per_second"].get<double>() < 1000);  // about the ingest's 200/s, counted from the store

    fanout_a.kill();  // its users disappear from the total once its entry goes stale
    REQUIRE(wait_until([&] { return latest_stats(clients[4])["users"] == 2; }, 10s));
}
