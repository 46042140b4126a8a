// The Jetstream source end to end: a real ingest process reading a local Jetstream
// stand-in (tests/support/jetstream_standin.cpp) over a real WebSocket, storing into a
// real SQLite file and publishing on a real Redis.

#include "bench/jetstream_events.h"
#include "bench/workload.h"
#include "common/tweet_parser.h"
#include "ingest/jetstream/mapper.h"
#include "tests/support/daemons.h"
#include "tests/support/redis_server.h"
#include "tests/support/shared_data.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <unistd.h>

#include <csignal>
#include <fstream>
#include <map>
#include <set>

using namespace birdwatch;
using namespace birdwatch::test;
using namespace birdwatch::workload;
using namespace std::chrono_literals;

namespace {

constexpr std::int64_t generated_from_us = 1783176000000000;  // after the recorded sample

class StandIn {
public:
    StandIn(const TempDir& dir, const std::string& name, std::vector<std::string> args)
        : port_(free_port()), log_(dir.file(name + "-connects.log")) {
        std::vector<std::string> argv = {BIRDWATCH_JETSTREAM_STANDIN_BIN, "--port", std::to_string(port_), "--log", log_};
        argv.insert(argv.end(), args.begin(), args.end());
        process_ = ChildProcess(argv, dir.file(name + ".log"));
        if (!wait_until([&] { return process_.log_tail().find("listening") != std::string::npos; }, 10s))
            FAIL("the Jetstream stand-in did not start:\n" << process_.log_tail());
    }
    unsigned short port() const { return port_; }
    std::string endpoint() const { return "ws://127.0.0.1:" + std::to_string(port_) + "/subscribe"; }
    std::vector<std::string> connects() const {
        std::ifstream in(log_);
        std::vector<std::string> lines;
        for (std::string line; std::getline(in, line);) lines.push_back(line.substr(8));
        return lines;
    }

private:
    unsigned short port_;
    std::string log_;
    ChildProcess process_;
};

std::string write_lines(const TempDir& dir, const std::string& name, const std::vector<std::string>& lines) {
    const std::string path = dir.file(name);
    std::ofstream out(path);
    for (const auto& line : lines) out << line << '\n';
    return path;
}

std::vector<std::string> jetstream_args(const std::vector<std::string>& endpoints, unsigned short http_port) {
    return {"--source.kind=jetstream", "--source.jetstream.endpoints=" + nlohmann::json(endpoints).dump(),
            "--http.port=" + std::to_string(http_port), "--source.jetstream.connect_timeout_ms=2000"};
}

std::map<std::string, Tweet> stored_tweets(const std::string& path) {
    std::map<std::string, Tweet> tweets;
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
        sqlite3_stmt* s = nullptr;
        sqlite3_prepare_v2(db, "SELECT json FROM tweets ORDER BY id", -1, &s, nullptr);
        TweetParser parser;
        while (sqlite3_step(s) == SQLITE_ROW) {
            std::vector<Tweet> out;
            parser.parse(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)), out);
            for (Tweet& t : out) tweets.emplace(t.id, std::move(t));
        }
        sqlite3_finalize(s);
    }
    sqlite3_close(db);
    return tweets;
}

std::size_t stored_count(const std::string& path) {
    sqlite3* db = nullptr;
    std::size_t count = 0;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
        sqlite3_stmt* s = nullptr;
        if (sqlite3_prepare_v2(db, "SELECT count(*) FROM tweets", -1, &s, nullptr) == SQLITE_OK &&
            sqlite3_step(s) == SQLITE_ROW)
            count = static_cast<std::size_t>(sqlite3_column_int64(s, 0));
        sqlite3_finalize(s);
    }
    sqlite3_close(db);
    return count;
}

std::vector<std::string> texts(std::size_t count) {
    std::string from;
    std::vector<std::string> out;
    for (const Tweet& t : load_tweets(BIRDWATCH_SHARED_DATA_DIR, count, from)) out.push_back(t.text);
    return out;
}

// The ids the ingest must store for the post-creating events among `events`.
std::vector<std::string> post_ids(const std::vector<std::string>& events) {
    std::vector<std::string> ids;
    for (const std::string& line : events) {
        const auto event = nlohmann::json::parse(line, nullptr, false);
        if (!event.is_object() || event.value("kind", "") != "commit") continue;
        const auto& commit = event["commit"];
        if (commit.value("collection", "") == "app.bsky.feed.post" && commit.value("operation", "") == "create")
            ids.push_back(JetstreamMapper::post_id(event["time_us"], event["did"].get<std::string>(),
                                                   commit["rkey"].get<std::string>()));
    }
    return ids;
}

const std::string post_metric = R"(birdwatch_jetstream_events_total{kind="post"})";

void stop_gracefully(ChildProcess& ingest) {
    ingest.signal(SIGTERM);
    INFO(ingest.log_tail());
    REQUIRE(ingest.wait_exit(30s * sanitizer_slowdown) == 0);
}

}  // namespace

TEST_CASE("jetstream: recorded and generated posts are each stored once with their fields, other events are "
          "counted, not stored, and a delete removes its post",
          "[streams]") {
    TempDir dir;
    RedisServer redis(dir);
    std::vector<std::string> events = shared_jetstream_lines();
    const std::size_t recorded = events.size();
    const std::vector<JetstreamPost> posts = generated_posts(300, 7, texts(400));
    const std::vector<std::string> generated = jetstream_events(posts, generated_from_us, 1000);
    events.insert(events.end(), generated.begin(), generated.end());
    const std::int64_t end_us = generated_from_us + static_cast<std::int64_t>(generated.size()) * 1000;
    events.push_back(jetstream_delete_event(end_us, posts[5].did, posts[5].rkey));
    std::vector<std::string> expected = post_ids(events);
    const std::string deleted_id = JetstreamMapper::post_id(
        generated_from_us + 5 * 1000, posts[5].did, posts[5].rkey);  // the 6th event: no like before it
    REQUIRE(std::erase(expected, deleted_id) == 1);

    StandIn standin(dir, "standin", {"--events", write_lines(dir, "events.jsonl", events)});
    const unsigned short http = free_port();
    ChildProcess ingest = start_ingest(dir, "ingest", redis.port(), jetstream_args({standin.endpoint()}, http));
    const bool read_all = wait_until(  // the delete is the last event: read, then passed on by the pipeline
        [&] { return metric(http, R"(birdwatch_ingest_deletions_total)") == 1; }, 30s);
    INFO(ingest.log_tail());
    REQUIRE(read_all);
    CHECK(metric(http, post_metric) == expected.size() + 1);
    CHECK(metric(http, R"(birdwatch_jetstream_events_total{kind="like"})") == (recorded ? 105 : 0) + 30);
    if (recorded) {
        CHECK(metric(http, R"(birdwatch_jetstream_events_total{kind="repost"})") == 15);
        CHECK(metric(http, R"(birdwatch_jetstream_events_total{kind="identity"})") == 1);
        CHECK(metric(http, R"(birdwatch_jetstream_events_total{kind="account"})") == 1);
    }
    CHECK(metric(http, R"(birdwatch_jetstream_events_total{kind="post_delete"})") == 1);
    stop_gracefully(ingest);

    const std::map<std::string, Tweet> stored = stored_tweets(dir.file("ingest.db"));
    std::vector<std::string> stored_ids;
    for (const auto& [id, tweet] : stored) stored_ids.push_back(id);
    std::sort(expected.begin(), expected.end());
    CHECK(stored_ids == expected);
    CHECK(stored.count(deleted_id) == 0);

    // The generated posts' fields, checked against what was sent.
    std::map<std::string, std::string> id_of_uri;
    std::int64_t time_us = generated_from_us;
    std::size_t checked_quotes = 0, checked_replies = 0, checked_mentions = 0;
    for (std::size_t i = 0; i < posts.size(); ++i, time_us += 1000) {
        if (i % 10 == 9) time_us += 1000;  // a like came first
        const JetstreamPost& post = posts[i];
        const std::string id = JetstreamMapper::post_id(time_us, post.did, post.rkey);
        id_of_uri[at_uri(post.did, post.rkey)] = id;
        if (i == 5) continue;
        INFO("post " << i << ": " << post.text);
        REQUIRE(stored.count(id) == 1);
        const Tweet& tweet = stored.at(id);
        CHECK(tweet.text == post.text);
        CHECK(tweet.lang == post.lang);
        CHECK(tweet.user.id == post.did);
        CHECK(tweet.url == "https://bsky.app/profile/" + post.did + "/post/" + post.rkey);
        const bool tagged = post.text.find(" #birdwatch") != std::string::npos;
        CHECK(tagged == (std::find(tweet.hashtags.begin(), tweet.hashtags.end(), "birdwatch") != tweet.hashtags.end()));
        for (const char* handle : {"alice.bsky.social", "bob.example.com", "sakura.bsky.social"}) {
            const bool mentioned = post.text.find(std::string("@") + handle) != std::string::npos;
            CHECK(mentioned == (std::find(tweet.mentions.begin(), tweet.mentions.end(), handle) != tweet.mentions.end()));
            checked_mentions += mentioned;
        }
        if (!post.reply_parent_uri.empty()) {
            CHECK(tweet.in_reply_to == id_of_uri.at(post.reply_parent_uri));
            ++checked_replies;
        }
        if (!post.quote_uri.empty()) {
            REQUIRE(tweet.quoted);
            const std::string quoted_id = id_of_uri.at(post.quote_uri);
            CHECK(tweet.quoted->id == quoted_id);
            if (quoted_id != deleted_id) CHECK(tweet.quoted->text == stored.at(quoted_id).text);
            CHECK(tweet.has_media == post.quote_with_media);
            ++checked_quotes;
        } else {
            CHECK(tweet.has_media == post.images);
        }
        if (!post.external_uri.empty())
            CHECK(std::find(tweet.urls.begin(), tweet.urls.end(), post.external_uri) != tweet.urls.end());
    }
    CHECK(checked_quotes > 20);
    CHECK(checked_replies > 20);
    CHECK(checked_mentions > 20);
    REQUIRE(!standin.connects().empty());
    CHECK(standin.connects()[0] == "/subscribe?wantedCollections=app.bsky.feed.post&maxMessageSizeBytes=1048576");
}

TEST_CASE("jetstream: a connection cut mid-frame, then SIGKILL and restart: every post stored once, nothing "
          "published twice, and a refusing endpoint is passed over",
          "[streams][persistence]") {
    TempDir dir;
    RedisServer redis(dir);
    const std::vector<JetstreamPost> posts = generated_posts(3000, 11, texts(500));
    const std::vector<std::string> events = jetstream_events(posts, generated_from_us, 1000, false);
    std::vector<std::string> expected = post_ids(events);
    std::sort(expected.begin(), expected.end());

    StandIn refusing(dir, "refusing", {"--refuse"});
    StandIn serving(dir, "serving", {"--events", write_lines(dir, "events.jsonl", events), "--rate", "1500",
                                     "--drop-after", "700", "--cut-mid-frame"});
    ChildProcess subscriber({find_program("redis-cli"), "-p", std::to_string(redis.port()), "--raw", "SUBSCRIBE",
                             "firehose"},
                            dir.file("firehose.log"));
    REQUIRE(wait_until([&] { return redis.command({"PUBSUB", "NUMSUB", "firehose"}) == "firehose 1"; }, 10s));
    const auto args = [&](unsigned short http) {
        auto all = jetstream_args({refusing.endpoint(), serving.endpoint()}, http);
        all.push_back("--redis.firehose_channel=firehose");
        return all;
    };
    const unsigned short first_http = free_port();
    ChildProcess first = start_ingest(dir, "ingest", redis.port(), args(first_http));
    const bool halfway = wait_until([&] { return metric(first_http, "birdwatch_store_accepted_total") >= 1500; }, 30s);
    INFO(first.log_tail());
    REQUIRE(halfway);
    CHECK(metric(first_http, R"(birdwatch_jetstream_reconnects_total{cause="network"})") >= 1);  // the cut
    CHECK(metric(first_http, "birdwatch_jetstream_failovers_total") >= 1);  // past the refusing one
    first.kill();

    const unsigned short second_http = free_port();
    ChildProcess second = start_ingest(dir, "ingest", redis.port(), args(second_http));
    const bool complete = wait_until([&] { return stored_count(dir.file("ingest.db")) == expected.size(); }, 60s);
    INFO(second.log_tail());
    REQUIRE(complete);
    CHECK(metric(second_http, R"(birdwatch_jetstream_repeats_total{why="rewound"})") > 0);  // dropped, not re-sent
    stop_gracefully(second);

    std::vector<std::string> stored_ids;
    for (const auto& [id, tweet] : stored_tweets(dir.file("ingest.db"))) stored_ids.push_back(id);
    CHECK(stored_ids == expected);

    // What clients could have seen: every publication names a stored post, none twice.
    subscriber.kill();
    std::ifstream in(subscriber.log_path());
    std::map<std::string, int> published;
    for (std::string line; std::getline(in, line);) {
        if (!line.starts_with("{")) continue;
        const auto at = line.find("\"tweet\":{\"id\":\"");
        REQUIRE(at != std::string::npos);
        ++published[line.substr(at + 15, line.find('"', at + 15) - at - 15)];
    }
    CHECK(published.size() > 2000);
    for (const auto& [id, times] : published) {
        INFO("published " << id);
        CHECK(times == 1);
        CHECK(std::binary_search(expected.begin(), expected.end(), id));
    }
    const auto connects = serving.connects();
    REQUIRE(connects.size() >= 3);  // first run, after the cut, after the restart
    CHECK(connects[0].find("cursor=") == std::string::npos);
    CHECK(connects[1].find("cursor=") != std::string::npos);
    CHECK(connects.back().find("cursor=") != std::string::npos);
    CHECK(refusing.connects().size() >= 2);
}

TEST_CASE("jetstream: failing over mid-stream to an instance with another clock stores every post once", "[streams]") {
    TempDir dir;
    RedisServer redis(dir);
    const std::vector<JetstreamPost> posts = generated_posts(2000, 13, texts(500));
    const std::vector<std::string> events = jetstream_events(posts, generated_from_us, 1000, false);
    const std::string file = write_lines(dir, "events.jsonl", events);
    StandIn dying(dir, "dying", {"--events", file, "--drop-after", "500", "--refuse-after-drop"});
    StandIn other(dir, "other", {"--events", file, "--time-offset-us", "3500"});
    const unsigned short http = free_port();
    ChildProcess ingest = start_ingest(dir, "ingest", redis.port(), jetstream_args({dying.endpoint(), other.endpoint()}, http));
    const bool read_all = wait_until([&] { return metric(http, post_metric) == posts.size(); }, 30s);
    INFO(ingest.log_tail());
    REQUIRE(read_all);
    const std::uint64_t repeats = metric(http, R"(birdwatch_jetstream_repeats_total{why="post"})");
    stop_gracefully(ingest);

    const auto stored = stored_tweets(dir.file("ingest.db"));
    CHECK(stored.size() == posts.size());
    std::set<std::string> urls;
    for (const auto& [id, tweet] : stored) urls.insert(tweet.url);
    CHECK(urls.size() == posts.size());
    // The posts the first instance delivered before it died keep its clock's ids; the
    // other instance re-sent them (the rewind), and they were dropped as repeats.
    std::size_t from_first = 0;
    for (std::size_t i = 0; i < posts.size(); ++i) {
        const std::int64_t time_us = generated_from_us + static_cast<std::int64_t>(i) * 1000;
        const bool first_clock = stored.count(JetstreamMapper::post_id(time_us, posts[i].did, posts[i].rkey)) == 1;
        const bool other_clock = stored.count(JetstreamMapper::post_id(time_us + 3500, posts[i].did, posts[i].rkey)) == 1;
        INFO("post " << i);
        REQUIRE(first_clock != other_clock);
        if (first_clock) CHECK(i == from_first++);
    }
    CHECK(from_first > 0);
    CHECK(from_first <= 500);
    CHECK(repeats == from_first);
    REQUIRE(other.connects().size() == 1);
    CHECK(other.connects()[0].find("&cursor=") != std::string::npos);
}

TEST_CASE("jetstream: malformed, oversized, binary and truncated frames are counted and skipped, and the ingest "
          "keeps going",
          "[streams][hardening]") {
    TempDir dir;
    RedisServer redis(dir);
    const std::vector<JetstreamPost> posts = generated_posts(200, 17, texts(300));
    const std::vector<std::string> good = jetstream_events(posts, generated_from_us, 1000, false);
    std::vector<std::string> events;
    const std::string huge_text(2 << 20, 'a');
    for (std::size_t i = 0; i < good.size(); ++i) {
        events.push_back(good[i]);
        if (i % 40 != 0) continue;
        events.push_back("this is not JSON");
        events.push_back(R"({"did":"did:plc:x","time_us":17831)");
        events.push_back("[1,2,3]");
        events.push_back(std::string(5000, '[') + std::string(5000, ']'));
        events.push_back(R"({"did":"did:plc:\ud800","time_us":1783176000000001,"kind":"commit","commit":)");
        events.push_back(R"({"did":"did:plc:x","time_us":)" + std::to_string(generated_from_us + i * 1000 + 1) +
                         R"(,"kind":"mystery"})");
        events.push_back("#binary \x01\x02\x03");
    }
    JetstreamPost giant = plain_post(did_for("giant"), "3giant", huge_text);
    events.push_back(jetstream_post_event(generated_from_us + 500000, giant));
    events.push_back(jetstream_post_event(generated_from_us + 500001, plain_post(did_for("last"), "3last", "the last one")));

    StandIn standin(dir, "standin", {"--events", write_lines(dir, "events.jsonl", events), "--drop-after", "100",
                                     "--cut-mid-frame"});
    const unsigned short http = free_port();
    ChildProcess ingest = start_ingest(dir, "ingest", redis.port(), jetstream_args({standin.endpoint()}, http));
    const bool read_all = wait_until([&] { return metric(http, post_metric) == posts.size() + 1; }, 30s);
    INFO(ingest.log_tail());
    REQUIRE(read_all);
    CHECK(metric(http, R"(birdwatch_jetstream_skipped_total{reason="oversized"})") == 1);
    CHECK(metric(http, R"(birdwatch_jetstream_skipped_total{reason="binary"})") >= 5);
    CHECK(metric(http, R"(birdwatch_jetstream_skipped_total{reason="not JSON"})") >= 15);
    CHECK(metric(http, R"(birdwatch_jetstream_skipped_total{reason="not a JSON object"})") >= 5);
    CHECK(metric(http, R"(birdwatch_jetstream_events_total{kind="unknown_kind"})") == 5);  // once each, rewind or not
    CHECK(metric(http, R"(birdwatch_jetstream_reconnects_total{cause="network"})") >= 1);
    CHECK(http_get(http, "/healthz").status == 200);
    stop_gracefully(ingest);
    CHECK(stored_count(dir.file("ingest.db")) == posts.size() + 1);
}

TEST_CASE("jetstream over wss: a real nginx terminating TLS in front of the stand-in: the certificate is verified, "
          "and a trusted one lets posts through",
          "[streams]") {
    TempDir dir;
    const std::string openssl = find_program("openssl"), nginx_binary = find_program("nginx");
    REQUIRE_FALSE(openssl.empty());
    REQUIRE_FALSE(nginx_binary.empty());  // both installed by scripts/install-deps
    const auto run = [&](std::vector<std::string> argv) {
        ChildProcess p(argv, dir.file("openssl.log"));
        INFO(p.log_tail());
        REQUIRE(p.wait_exit(60s) == 0);
    };
    // A test CA, and a certificate for localhost signed by it.
    std::ofstream(dir.file("san.cnf")) << "subjectAltName=DNS:localhost\n";
    run({openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir.file("ca.key"), "-out",
         dir.file("ca.crt"), "-days", "2", "-subj", "/CN=birdwatch test CA"});
    run({openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", dir.file("server.key"), "-out",
         dir.file("server.csr"), "-subj", "/CN=localhost"});
    run({openssl, "x509", "-req", "-in", dir.file("server.csr"), "-CA", dir.file("ca.crt"), "-CAkey", dir.file("ca.key"),
         "-CAcreateserial", "-out", dir.file("server.crt"), "-days", "2", "-extfile", dir.file("san.cnf")});

    const std::vector<JetstreamPost> posts = generated_posts(50, 19, texts(100));
    StandIn standin(dir, "standin", {"--events", write_lines(dir, "events.jsonl", jetstream_events(posts, generated_from_us, 1000, false))});
    const unsigned short tls_port = free_port();
    std::ofstream(dir.file("nginx.conf"))
        << "pid " << dir.file("nginx.pid") << ";\nerror_log " << dir.file("nginx-error.log") << ";\n"
        << "events {}\nhttp {\n  access_log off;\n  client_body_temp_path " << dir.path() << ";\n  proxy_temp_path "
        << dir.path() << ";\n  server {\n    listen 127.0.0.1:" << tls_port << " ssl;\n    server_name localhost;\n"
        << "    ssl_certificate " << dir.file("server.crt") << ";\n    ssl_certificate_key " << dir.file("server.key")
        << ";\n    location / {\n      proxy_pass http://127.0.0.1:" << standin.port()
        << ";\n      proxy_http_version 1.1;\n      proxy_set_header Upgrade $http_upgrade;\n"
        << "      proxy_set_header Connection upgrade;\n      proxy_read_timeout 1h;\n    }\n  }\n}\n";
    ChildProcess nginx({nginx_binary, "-c", dir.file("nginx.conf"), "-g", "daemon off;"}, dir.file("nginx.log"));
    REQUIRE(wait_until([&] {
        const int fd = connect_loopback(tls_port);
        if (fd >= 0) ::close(fd);
        return fd >= 0;
    }, 10s));

    RedisServer redis(dir);
    const std::string endpoint = "wss://localhost:" + std::to_string(tls_port) + "/subscribe";
    {
        const unsigned short http = free_port();
        ChildProcess untrusting = start_ingest(dir, "untrusting", redis.port(), jetstream_args({endpoint}, http));
        const bool refused = wait_until(
            [&] { return metric(http, R"(birdwatch_jetstream_reconnects_total{cause="network"})") >= 1; }, 20s);
        INFO(untrusting.log_tail());
        REQUIRE(refused);
        CHECK(untrusting.log_tail().find("certificate verify failed") != std::string::npos);
        CHECK(metric(http, post_metric) == 0);
        stop_gracefully(untrusting);
    }
    const unsigned short http = free_port();
    auto args = jetstream_args({endpoint}, http);
    args.push_back("--source.jetstream.ca_file=" + dir.file("ca.crt"));
    ChildProcess trusting = start_ingest(dir, "trusting", redis.port(), args);
    const bool read_all = wait_until([&] { return metric(http, post_metric) == posts.size(); }, 20s);
    INFO(trusting.log_tail());
    REQUIRE(read_all);
    stop_gracefully(trusting);
    CHECK(stored_count(dir.file("trusting.db")) == posts.size());
}
