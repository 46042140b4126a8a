// The ingest's store path as a process: a store that goes away and comes back, and a
// SIGKILL in the middle of a stream. Real SQLite files, real spool files.

#include "bench/workload.h"
#include "ingest/sources/synthetic_corpus.h"
#include "tests/support/daemons.h"
#include "tests/support/fake_elastic.h"
#include "tests/support/live_search.h"
#include "tests/support/redis_server.h"
#include "tests/support/store_books.h"
#include "common/tweet_parser.h"

#include "common/store/sqlite_store.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <fstream>
#include <regex>
#include <set>

using namespace birdwatch;
using namespace birdwatch::test;
using namespace std::chrono_literals;

namespace {

std::vector<std::int64_t> stored_ids(const std::string& path) {
    sqlite3* db = nullptr;
    std::vector<std::int64_t> ids;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
        sqlite3_stmt* s = nullptr;
        sqlite3_prepare_v2(db, "SELECT id FROM tweets ORDER BY id", -1, &s, nullptr);
        while (sqlite3_step(s) == SQLITE_ROW) ids.push_back(sqlite3_column_int64(s, 0));
        sqlite3_finalize(s);
    }
    sqlite3_close(db);
    return ids;
}

std::vector<std::int64_t> synthetic_ids(std::uint64_t seed, std::size_t count, std::vector<std::string>* lines = nullptr) {
    SyntheticCorpus corpus(seed, 1700000000000, 1);
    std::vector<std::int64_t> ids;
    std::vector<Tweet> tweets;
    TweetParser parser;
    for (std::size_t i = 0; i < count; ++i) {
        std::string line = corpus.next();
        tweets.clear();
        parser.parse(line, tweets);
        ids.push_back(std::stoll(tweets.at(0).id));
        if (lines) lines->push_back(std::move(line));
    }
    return ids;
}

}  // namespace

TEST_CASE("store locked by another writer mid-stream: tweets spool, then drain, none lost, memory bounded",
          "[persistence]") {
    TempDir dir;
    RedisServer redis(dir);
    const std::string db_path = dir.file("ingest.db");
    const unsigned short http_port = free_port();
    ChildProcess ingest = start_ingest(dir, "ingest", redis.port(),
                                       {"--source.synthetic.count=4000", "--source.synthetic.rate=800",
                                        "--source.synthetic.seed=9", "--source.synthetic.start_ms=1700000000000",
                                        "--http.port=" + std::to_string(http_port), "--store.batch_size=200"});
    REQUIRE(wait_until([&] { return metric(http_port, "birdwatch_store_stored_total") >= 500; }, 10s));
    const long rss_before = rss_kib(ingest.pid());

    sqlite3* other = nullptr;
    REQUIRE(sqlite3_open(db_path.c_str(), &other) == SQLITE_OK);
    sqlite3_busy_timeout(other, 5000);  // the ingest may be mid-commit: wait for the lock, as a real writer would
    REQUIRE(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
    // Past the store's busy timeout (2 s): a write fails, and the backlog grows in the spool.
    // The books balance in every scrape meanwhile.
    int scrapes = 0;
    REQUIRE(wait_until([&] {
        const StoreBooks books = scrape_store_books(http_port);
        INFO(books.describe());
        REQUIRE(books.balanced());
        ++scrapes;
        return metric(http_port, "birdwatch_store_write_failures_total") >= 1 && books.pending >= 1000;
    }, 10s));
    CHECK(scrapes > 5);
    const std::uint64_t stored_during = metric(http_port, "birdwatch_store_stored_total");
    const long rss_during = rss_kib(ingest.pid());
    sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(other);

    INFO(ingest.log_tail());
    REQUIRE(ingest.wait_exit(30s) == 0);
    const std::string log = ingest.log_tail(100000);
    CHECK(log.find("store write failed, spooling until it recovers") != std::string::npos);
    CHECK(log.find("store is back") != std::string::npos);
    CHECK(log.find("left_in_spool=0") != std::string::npos);
    CHECK(stored_during < 4000);                 // the outage was real: the store stopped taking tweets
    CHECK(rss_during - rss_before < 50 * 1024);  // the backlog went to disk, not memory
    CHECK(stored_ids(db_path) == [] {
        auto ids = synthetic_ids(9, 4000);
        std::sort(ids.begin(), ids.end());
        return ids;
    }());
}

TEST_CASE("SIGKILL while the store is blocked: every tweet a client received is in the store after the restart",
          "[persistence][hardening]") {
    TempDir dir;
    RedisServer redis(dir);
    const std::string db = dir.file("ingest.db");
    const unsigned short ingest_port = free_port(), fanout_port = free_port();
    ChildProcess ingest = start_ingest(dir, "ingest", redis.port(),
                                       {"--source.synthetic.rate=1000", "--source.synthetic.seed=21",
                                        "--http.port=" + std::to_string(ingest_port)});
    REQUIRE(wait_until([&] { return metric(ingest_port, "birdwatch_store_stored_total") > 0; }, 10s));
    ChildProcess fanout = start_fanout(dir, "fanout", redis.port(), fanout_port, {"--store.kind=none"});
    WsIo io;
    WsClient client(io);
    REQUIRE(client.connect(fanout_port));
    const std::string qid = subscribe(client, "the OR hoy OR heute");
    REQUIRE(wait_until([&] { return tweet_payloads(client).size() >= 20; }, 10s));

    // Another writer holds the database: the ingest's writes wait, then fail, and retry.
    sqlite3* other = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &other) == SQLITE_OK);
    sqlite3_busy_timeout(other, 5000);
    REQUIRE(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
    const std::size_t before_block = tweet_payloads(client).size();
    REQUIRE(wait_until([&] {
        const StoreBooks books = scrape_store_books(ingest_port);
        INFO(books.describe());
        REQUIRE(books.balanced());
        return metric(ingest_port, "birdwatch_store_write_failures_total") >= 1 &&
               tweet_payloads(client).size() >= before_block + 300;
    }, 20s));
    ingest.kill();  // SIGKILL with the store blocked: no flush, no goodbye
    REQUIRE(redis.command({"PUBLISH", "matches", sentinel_payload({qid})}) == "1");
    REQUIRE(wait_for_sentinel(client, 10s));  // so what was on its way to the client has arrived
    std::set<std::int64_t> received;
    for (const auto& payload : tweet_payloads(client)) received.insert(std::stoll(tweet_from_payload(payload).id));
    sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(other);

    const std::string empty = dir.file("empty.ndjson");
    std::ofstream{empty};
    ChildProcess restarted = start_ingest(dir, "ingest", redis.port(), {"--source.kind=replay", "--source.replay.path=" + empty});
    INFO(restarted.log_tail());
    REQUIRE(restarted.wait_exit(30s) == 0);
    const std::vector<std::int64_t> stored = stored_ids(db);
    const std::set<std::int64_t> in_store(stored.begin(), stored.end());
    std::vector<std::int64_t> missing;
    for (std::int64_t id : received)
        if (!in_store.count(id)) missing.push_back(id);
    INFO(missing.size() << " of " << received.size() << " received tweets are not in the store");
    CHECK(missing.empty());
    CHECK(received.size() > before_block + 300 - 1);
}

TEST_CASE("clients that stay connected through a Redis restart and an ingest SIGKILL end with every stored match, "
          "none twice (gap notices)",
          "[persistence][hardening]") {
    TempDir dir;
    RedisServer redis(dir);
    const std::string db = dir.file("ingest.db");
    const unsigned short fanout_port = free_port(), ingest_port = free_port();
    const std::vector<std::string> ingest_flags = {"--source.synthetic.rate=400", "--source.synthetic.seed=33",
                                                   "--http.port=" + std::to_string(ingest_port)};
    ChildProcess ingest = start_ingest(dir, "ingest", redis.port(), ingest_flags);
    REQUIRE(wait_until([&] { return std::ifstream(db).good(); }, 10s));
    ChildProcess fanout = start_fanout(dir, "fanout", redis.port(), fanout_port,
                                       {"--store.kind=sqlite", "--store.sqlite.path=" + db});
    const std::string query = "the OR hoy OR heute";
    struct Follower {  // the client logic docs/protocol.md asks for, and nothing more
        std::unique_ptr<WsClient> ws;
        std::string qid;
        std::size_t read = 0, duplicates = 0;
        std::set<std::uint64_t> got;
        int resuming = 0;  // gaps whose resume has not reached its last page
        bool saw_sentinel = false;
    };
    WsIo io;
    std::vector<Follower> clients(10);
    for (auto& c : clients) {
        c.ws = std::make_unique<WsClient>(io);
        REQUIRE(c.ws->connect(fanout_port));
        c.qid = subscribe(*c.ws, query);
    }
    const auto pump = [&] {
        for (auto& c : clients) {
            const auto messages = c.ws->messages();
            for (; c.read < messages.size(); ++c.read) {
                if (is_sentinel(messages[c.read])) {
                    c.saw_sentinel = true;
                    continue;
                }
                const auto m = nlohmann::json::parse(messages[c.read]);
                const auto record = [&](const nlohmann::json& tweet) {
                    if (!c.got.insert(std::stoull(tweet["id"].get<std::string>())).second) ++c.duplicates;
                };
                if (m["type"] == "tweet") record(m["tweet"]);
                if (m["type"] == "gap") {
                    ++c.resuming;
                    c.ws->send(nlohmann::json{{"type", "resume"}, {"qid", c.qid}, {"since_id", m["after_id"]},
                                              {"before_id", m["before_id"]}}.dump());
                }
                if (m["type"] == "resumed") {
                    for (const auto& t : m["tweets"]) record(t);
                    if (m["next_since"].is_string())
                        c.ws->send(nlohmann::json{{"type", "resume"}, {"qid", c.qid}, {"since_id", m["next_since"]},
                                                  {"before_id", m["before_id"]}}.dump());
                    else
                        --c.resuming;
                }
            }
        }
    };
    const auto receive_more = [&](std::size_t n) {  // every client gets n more tweets
        std::vector<std::size_t> before;
        for (const auto& c : clients) before.push_back(c.got.size());
        return wait_until([&] {
            pump();
            for (std::size_t i = 0; i < clients.size(); ++i)
                if (clients[i].got.size() < before[i] + n) return false;
            return true;
        }, 20s);
    };
    REQUIRE(receive_more(20));
    redis.kill();  // everything published meanwhile is lost to Pub/Sub
    REQUIRE(wait_until([&] {
        return metric(ingest_port, "birdwatch_ingest_dropped_total{reason=\"redis_unavailable\"}") >= 50;
    }, 20s));
    redis.start();
    REQUIRE(receive_more(40));
    ingest.kill();  // SIGKILL: what it had spooled but not published is stored by the next run, never published
    ingest = start_ingest(dir, "ingest", redis.port(), ingest_flags);
    const auto gaps = [&](const std::string& reason) {
        return metric(fanout_port, "birdwatch_fanout_gaps_total{reason=\"" + reason + "\"}");
    };
    REQUIRE(wait_until([&] {  // the new run publishes: a new epoch
        pump();
        return gaps("epoch") >= 1;
    }, 20s));
    REQUIRE(receive_more(20));
    ingest.signal(SIGTERM);
    INFO(ingest.log_tail());
    REQUIRE(ingest.wait_exit(30s) == 0);
    // All is published: once the sentinel is in and every gap's resume has reached its last
    // page, each client holds all it will ever get.
    std::vector<std::string> qids{clients[0].qid};
    REQUIRE(redis.command({"PUBLISH", "matches", sentinel_payload(qids)}) == "1");
    REQUIRE(wait_until([&] {
        pump();
        return std::all_of(clients.begin(), clients.end(), [](const Follower& c) {
            return c.saw_sentinel && c.resuming == 0;
        });
    }, 20s));

    SqliteStore store({db, true});
    const ParsedQuery parsed = *parse_query(query).query;
    std::vector<std::uint64_t> matching;
    PageRequest page;
    page.order = PageRequest::Order::oldest_first;
    page.size = 1000;
    page.max_candidates = 1000000;
    while (true) {
        StoreStatus status;
        const HistoryPage got = store.history(parsed, page, status);
        REQUIRE(status.ok());
        for (const auto& t : got.tweets) matching.push_back(std::stoull(nlohmann::json::parse(t)["id"].get<std::string>()));
        if (got.next == 0) break;
        page.after = got.next;
    }
    CHECK(gaps("resubscribed") >= 1);  // Redis came back
    INFO(fanout.log_tail(3000));
    for (const auto& c : clients) {
        std::size_t missing = 0;
        for (std::uint64_t id : matching)
            if (id >= *c.got.begin() && !c.got.count(id)) ++missing;
        INFO(missing << " stored matches missing of " << matching.size());
        CHECK(missing == 0);
        CHECK(c.duplicates == 0);
    }
}

TEST_CASE("SIGKILL mid-stream, restart: the store holds every tweet the ingest had accepted, once", "[persistence]") {
    TempDir dir;
    RedisServer redis(dir);
    std::vector<std::string> lines;
    const std::vector<std::int64_t> ids = synthetic_ids(4, 20000, &lines);
    const std::string input = dir.file("input.ndjson");
    {
        std::ofstream out(input);
        for (const auto& l : lines) out << l << '\n';
    }
    const std::string empty = dir.file("empty.ndjson");
    std::ofstream{empty};
    const unsigned short http_port = free_port();
    ChildProcess first = start_ingest(dir, "ingest", redis.port(),
                                      {"--source.kind=replay", "--source.replay.path=" + input,
                                       "--source.replay.rate=3000", "--http.port=" + std::to_string(http_port)});
    REQUIRE(wait_until([&] { return metric(http_port, "birdwatch_store_accepted_total") >= 5000; }, 20s));
    const std::uint64_t accepted = metric(http_port, "birdwatch_store_accepted_total");
    first.kill();  // SIGKILL: no flush, no goodbye

    ChildProcess second = start_ingest(dir, "ingest", redis.port(), {"--source.kind=replay", "--source.replay.path=" + empty});
    INFO(second.log_tail());
    REQUIRE(second.wait_exit(30s) == 0);
    const std::vector<std::int64_t> stored = stored_ids(dir.file("ingest.db"));
    REQUIRE(stored.size() >= accepted);  // everything accepted before the kill
    REQUIRE(stored.size() < ids.size());  // and the kill did interrupt the stream
    // Exactly the first tweets of the input, each once (ids are unique and ascending in the input).
    CHECK(stored == std::vector<std::int64_t>(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(stored.size())));
}

TEST_CASE("ingest with store.kind=elasticsearch: while ElasticSearch refuses, tweets wait in the spool, "
          "and the next start stores every one of them exactly once",
          "[persistence][elastic]") {
    TempDir dir;
    RedisServer redis(dir);
    FakeElastic es;
    es.fail_requests(std::vector<int>(12, 503));  // longer than this short run: it ends with ES still refusing
    const std::vector<std::string> store_flags = {"--store.kind=elasticsearch", "--store.elasticsearch.url=" + es.url(),
                                                  "--store.batch_size=250", "--store.batch_max_bytes=20000"};
    std::vector<std::string> flags = store_flags;
    flags.insert(flags.end(), {"--source.synthetic.count=1500", "--source.synthetic.rate=0", "--source.synthetic.seed=6"});
    ChildProcess first = start_ingest(dir, "ingest", redis.port(), flags);
    REQUIRE(first.wait_exit(60s) == 0);
    std::string log = first.log_tail(100000);
    INFO(log);
    CHECK(es.has_template("birdwatch-tweets"));
    CHECK(log.find("store write failed, spooling until it recovers") != std::string::npos);
    CHECK(log.find("left_in_spool=1500") != std::string::npos);
    CHECK(es.documents() == 0);

    const std::string empty = dir.file("empty.ndjson");
    std::ofstream{empty};
    flags = store_flags;
    flags.insert(flags.end(), {"--source.kind=replay", "--source.replay.path=" + empty});
    ChildProcess second = start_ingest(dir, "ingest", redis.port(), flags);
    REQUIRE(second.wait_exit(60s) == 0);
    log = second.log_tail(100000);
    CHECK(log.find("replaying the spool left by the last run\" records=1500") != std::string::npos);
    CHECK(log.find("left_in_spool=0") != std::string::npos);
    CHECK(es.documents() == 1500);
    for (const auto& [id, ops] : es.index_ops()) CHECK(ops == 1);
    // Batches were cut at 20,000 bytes of tweets (about 40 synthetic ones), not 250 tweets.
    std::size_t successful_bulks = 0;
    for (const auto& r : es.requests())
        if (r.target == "/_bulk") successful_bulks += 1;
    CHECK(successful_bulks >= 1500 / 45);
}
