// The X stream clients against a local HTTP server that behaves as the documented
// API does: chunked streams, keep-alives, control messages, cut connections, error
// statuses, stalls, gzip, and the v2 rules endpoints. Reconnect delays are recorded
// by a substitute sleeper, so schedules are asserted without waiting for them.

#include "ingest/pipeline.h"
#include "ingest/sources/stream_source.h"
#include "ingest/sources/synthetic_corpus.h"
#include "tests/support/process.h"
#include "tests/support/script_server.h"
#include "tests/support/shared_data.h"

#include <catch2/catch.hpp>
#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include <random>

using namespace birdwatch;
using namespace birdwatch::test;
using namespace std::chrono_literals;

namespace {

struct CurlGlobal {
    CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
    ~CurlGlobal() { curl_global_cleanup(); }
} curl_global;

std::vector<std::string> thousand_tweets() {
    std::vector<std::string> lines = shared_lines("v1-stream.jsonl");
    if (lines.size() < 1000) {
        SyntheticCorpus corpus(5, 1700000000000, 10);
        while (lines.size() < 1000) lines.push_back(corpus.next());
    }
    lines.resize(1000);
    return lines;
}

std::string framed(const std::vector<std::string>& messages, std::size_t from, std::size_t to) {
    std::string s;
    for (std::size_t i = from; i < to; ++i) s += messages[i] + "\r\n";
    return s;
}

std::vector<std::string> split(const std::string& s, const std::function<std::size_t()>& size) {
    std::vector<std::string> chunks;
    for (std::size_t at = 0; at < s.size();) {
        const std::size_t n = std::min(size(), s.size() - at);
        chunks.push_back(s.substr(at, n));
        at += n;
    }
    return chunks;
}

// Runs a StreamSource into a belt, collecting what it emits and the delays it asks for.
// With `real_time` the delays are also waited for, as in production.
struct Harness {
    explicit Harness(StreamOptions options, bool real_time = false) {
        source = std::make_unique<StreamSource>(std::move(options), lines, metrics,
                                                [this, real_time](std::chrono::milliseconds d, const std::stop_token& stop) {
                                                    {
                                                        std::lock_guard lock(mutex);
                                                        delays.push_back(d);
                                                    }
                                                    if (real_time) return StreamSource::real_sleeper()(d, stop);
                                                    std::this_thread::sleep_for(5ms);
                                                    return !stop.stop_requested();
                                                });
        consumer = std::thread([this] {
            while (auto line = lines.pop()) {
                std::lock_guard lock(mutex);
                received.push_back(std::move(line->bytes));
            }
        });
        source->start(metrics);
    }
    ~Harness() {
        source->stop();
        consumer.join();
    }
    bool wait_for(std::size_t count, std::chrono::milliseconds timeout = 10s) {
        return wait_until([&] { std::lock_guard lock(mutex); return received.size() >= count; }, timeout);
    }
    std::vector<std::chrono::milliseconds> recorded_delays() {
        std::lock_guard lock(mutex);
        return delays;
    }
    std::vector<std::string> messages() {
        std::lock_guard lock(mutex);
        return received;
    }

    MetricsRegistry metrics;
    BoundedChannel<StreamLine> lines{100000};
    std::unique_ptr<StreamSource> source;
    std::thread consumer;
    std::mutex mutex;
    std::vector<std::string> received;
    std::vector<std::chrono::milliseconds> delays;
};

StreamOptions v2_options(const ScriptServer& server) {
    StreamOptions o;
    o.api = StreamOptions::Api::x_v2;
    o.base_url = server.base_url();
    o.bearer_token = "test-bearer-token";
    return o;
}

constexpr const char* v2_path = "/2/tweets/search/stream";

}  // namespace

TEST_CASE("stream: 1,000 tweets arrive identical in one chunk, in random chunks, in 1-byte chunks, and gzip-encoded",
          "[streams]") {
    const auto tweets = thousand_tweets();
    std::mt19937 random(11);
    ScriptServer server;
    const std::string body = framed(tweets, 0, 1000);
    server.enqueue(v2_path, {200, "application/json", {body}});
    server.enqueue(v2_path, {200, "application/json", split(body, [&] { return 1 + random() % 4000; })});
    // 1-byte HTTP chunks for the first 20 tweets (about 100,000 writes); the framer's own
    // test covers all 1,000 byte by byte without the network.
    const std::string head = framed(tweets, 0, 20);
    server.enqueue(v2_path, {200, "application/json", split(head, [] { return std::size_t{1}; })});
    ScriptedResponse gzipped{200, "application/json", {body}};
    gzipped.gzip = true;
    server.enqueue(v2_path, gzipped);
    ScriptedResponse quiet{200, "application/json", {}};
    quiet.hold = 10s;
    server.enqueue(v2_path, quiet);

    Harness h(v2_options(server));
    REQUIRE(h.wait_for(3020, 60s));
    const auto got = h.messages();
    CHECK(std::vector<std::string>(got.begin(), got.begin() + 1000) == tweets);
    CHECK(std::vector<std::string>(got.begin() + 1000, got.begin() + 2000) == tweets);
    CHECK(std::vector<std::string>(got.begin() + 2000, got.begin() + 2020) ==
          std::vector<std::string>(tweets.begin(), tweets.begin() + 20));
    CHECK(std::vector<std::string>(got.begin() + 2020, got.begin() + 3020) == tweets);
    const auto requests = server.requests();
    REQUIRE_FALSE(requests.empty());
    CHECK(requests[0].method == "GET");
    CHECK(requests[0].headers.at("authorization") == "Bearer test-bearer-token");
    CHECK(requests[0].headers.at("accept-encoding").find("gzip") != std::string::npos);
    CHECK(requests[0].target.find("expansions=author_id") != std::string::npos);
    CHECK(requests[0].target.find("user.fields=username,name,profile_image_url,public_metrics") != std::string::npos);
}

TEST_CASE("stream: keep-alives, control messages, malformed and oversized lines yield no tweets, are counted, "
          "and the stream goes on", "[streams]") {
    ScriptServer server;
    std::string body;
    int tweets = 0;
    SyntheticCorpus corpus(2, 1700000000000, 10);
    for (int i = 0; i < 100; ++i) {
        body += corpus.next() + "\r\n";
        ++tweets;
        if (i % 10 == 0) body += "\r\n";
        if (i % 25 == 0) body += R"({"limit":{"track":12,"timestamp_ms":"1"}})" "\r\n";
        if (i % 50 == 0) body += R"({"delete":{"status":{"id":1,"id_str":"1","user_id":3}}})" "\r\n";
    }
    body += "this is not json\r\n";
    body += R"({"id_str":"99","text":"cut short)" "\r\n";
    body += std::string(2 << 20, 'x') + "\r\n";  // over the 1 MiB message limit
    body += R"({"warning":{"code":"FALLING_BEHIND","message":"Your connection is falling behind","percent_full":60}})" "\r\n";
    body += R"({"errors":[{"title":"operational-disconnect","disconnect_type":"UpstreamOperationalDisconnect"}]})" "\r\n";
    ScriptedResponse stream{200, "application/json", {body}};
    stream.hold = 10s;
    server.enqueue(v2_path, stream);

    MetricsRegistry metrics;
    BoundedChannel<StreamLine> lines(10000);
    BoundedChannel<QueryUpdate> queries(10);
    BoundedChannel<AcceptedTweet> out(10000);
    PipelineOptions pipeline_options;
    pipeline_options.firehose_channel = "firehose";  // every tweet, so they can be counted
    Pipeline pipeline(pipeline_options, lines, queries, out, metrics);
    StreamSource source(v2_options(server), lines, metrics);
    pipeline.start();
    source.start(metrics);
    std::vector<Publication> published;
    const auto take = [&] {
        while (auto accepted = out.pop_for(0ms))
            for (auto& p : accepted->publications) published.push_back(std::move(p));
    };
    // The stream's last line, the error, has gone through the pipeline: so has everything before it.
    REQUIRE(wait_until([&] {
        take();
        return metrics.render_prometheus().find("birdwatch_ingest_control_messages_total{kind=\"error\"} 1\n") !=
               std::string::npos;
    }, 10s));
    source.stop();
    pipeline.join();
    take();
    const auto deletes = std::count_if(published.begin(), published.end(), [](const Publication& p) {
        return p.payload.find(R"("type":"delete","id":"1")") != std::string::npos;
    });
    CHECK(deletes == 2);  // delete notices go on to the store and the fanouts
    CHECK(published.size() == 102);
    const std::string text = metrics.render_prometheus();
    CHECK(text.find("birdwatch_stream_keepalives_total 10\n") != std::string::npos);
    CHECK(text.find("birdwatch_stream_messages_total 110\n") != std::string::npos);
    CHECK(text.find("birdwatch_stream_oversized_total 1\n") != std::string::npos);
    CHECK(text.find("birdwatch_ingest_skipped_lines_total{reason=\"not a JSON object\"} 1\n") != std::string::npos);
    CHECK(text.find("birdwatch_ingest_skipped_lines_total{reason=\"") != text.rfind("birdwatch_ingest_skipped_lines_total{reason=\"not a JSON"));
    CHECK(text.find("birdwatch_ingest_control_messages_total{kind=\"limit\"} 4\n") != std::string::npos);
    CHECK(text.find("birdwatch_ingest_control_messages_total{kind=\"delete\"} 2\n") != std::string::npos);
    CHECK(text.find("birdwatch_ingest_control_messages_total{kind=\"warning\"} 1\n") != std::string::npos);
    CHECK(text.find("birdwatch_ingest_control_messages_total{kind=\"error\"} 1\n") != std::string::npos);
    CHECK(text.find("birdwatch_ingest_tweets_total 100\n") != std::string::npos);
}

TEST_CASE("stream: a disconnect mid-object loses only that object, and reconnects after 250 ms", "[streams]") {
    const auto tweets = thousand_tweets();
    ScriptServer server;
    const std::string first = framed(tweets, 0, 10) + tweets[10].substr(0, tweets[10].size() / 2);
    ScriptedResponse cut{200, "application/json", {first}};
    cut.cut = true;
    server.enqueue(v2_path, cut);
    ScriptedResponse second{200, "application/json", {framed(tweets, 11, 21)}};
    second.hold = 10s;
    server.enqueue(v2_path, second);
    Harness h(v2_options(server));
    REQUIRE(h.wait_for(20));
    std::vector<std::string> expected(tweets.begin(), tweets.begin() + 10);
    expected.insert(expected.end(), tweets.begin() + 11, tweets.begin() + 21);
    CHECK(h.messages() == expected);
    CHECK(h.recorded_delays() == std::vector<std::chrono::milliseconds>{250ms});
    CHECK(h.metrics.render_prometheus().find("birdwatch_stream_reconnects_total{cause=\"network\"} 1") != std::string::npos);
}

TEST_CASE("stream: HTTP 503 backs off 5 s then 10 s, 420 and 429 back off from 60 s, then it resumes", "[streams]") {
    ScriptServer server;
    server.enqueue(v2_path, {503, "application/json", {R"({"title":"Service Unavailable"})"}, {}, false});
    server.enqueue(v2_path, {503, "application/json", {R"({"title":"Service Unavailable"})"}, {}, false});
    server.enqueue(v2_path, {420, "application/json", {R"({"title":"Enhance Your Calm"})"}, {}, false});
    server.enqueue(v2_path, {429, "application/json", {R"({"title":"Too Many Requests"})"}, {}, false});
    ScriptedResponse ok{200, "application/json", {R"({"data":{"id":"1","text":"back"}})" "\r\n"}};
    ok.hold = 10s;
    server.enqueue(v2_path, ok);
    Harness h(v2_options(server));
    REQUIRE(h.wait_for(1));
    CHECK(h.messages() == std::vector<std::string>{R"({"data":{"id":"1","text":"back"}})"});
    CHECK(h.recorded_delays() == std::vector<std::chrono::milliseconds>{5s, 10s, 60s, 120s});
    const std::string text = h.metrics.render_prometheus();
    CHECK(text.find("birdwatch_stream_reconnects_total{cause=\"http\"} 2") != std::string::npos);
    CHECK(text.find("birdwatch_stream_reconnects_total{cause=\"rate_limited\"} 2") != std::string::npos);
}

TEST_CASE("stream: a silent connection is a stall, and is replaced", "[streams]") {
    const auto tweets = thousand_tweets();
    ScriptServer server;
    ScriptedResponse silent{200, "application/json", {framed(tweets, 0, 3)}};
    silent.hold = 30s;  // the server holds the connection and says nothing
    server.enqueue(v2_path, silent);
    ScriptedResponse next{200, "application/json", {framed(tweets, 3, 6)}};
    next.hold = 10s;
    server.enqueue(v2_path, next);
    StreamOptions options = v2_options(server);
    options.stall_timeout = 1500ms;
    const auto start = std::chrono::steady_clock::now();
    Harness h(options);
    REQUIRE(h.wait_for(6, 15s));
    CHECK(std::chrono::steady_clock::now() - start >= 1500ms);  // not before the stall limit
    CHECK(h.messages() == std::vector<std::string>(tweets.begin(), tweets.begin() + 6));
    CHECK(h.recorded_delays() == std::vector<std::chrono::milliseconds>{250ms});
    CHECK(h.metrics.render_prometheus().find("birdwatch_stream_reconnects_total{cause=\"stall\"} 1") != std::string::npos);
}

TEST_CASE("stream: five cuts in a row, each after data, are each reconnected within 0.25-0.5 s", "[streams]") {
    const auto tweets = thousand_tweets();
    ScriptServer server;
    for (std::size_t i = 0; i < 5; ++i) {
        ScriptedResponse cut{200, "application/json", {framed(tweets, 3 * i, 3 * i + 3)}};
        cut.cut = true;
        server.enqueue(v2_path, cut);
    }
    ScriptedResponse last{200, "application/json", {framed(tweets, 15, 18)}};
    last.hold = 10s;
    server.enqueue(v2_path, last);
    Harness h(v2_options(server), true);
    REQUIRE(h.wait_for(18, 15s));
    CHECK(h.messages() == std::vector<std::string>(tweets.begin(), tweets.begin() + 18));
    CHECK(h.recorded_delays() == std::vector<std::chrono::milliseconds>(5, 250ms));
    const auto requests = server.requests();
    REQUIRE(requests.size() == 6);
    for (std::size_t i = 1; i < requests.size(); ++i) {
        const auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(requests[i].at - requests[i - 1].at);
        INFO("reconnect " << i << " after " << gap.count() << " ms");
        CHECK(gap >= 250ms);
        CHECK(gap <= 500ms);
    }
}

TEST_CASE("stream: fault sequences follow X's schedules, and data in between restarts them", "[streams]") {
    const auto tweets = thousand_tweets();
    ScriptServer server;
    server.enqueue(v2_path, {420, "application/json", {R"({"title":"Enhance Your Calm"})"}, {}, false});
    ScriptedResponse worked{200, "application/json", {framed(tweets, 0, 3)}};
    worked.cut = true;
    server.enqueue(v2_path, worked);
    server.enqueue(v2_path, {429, "application/json", {R"({"title":"Too Many Requests"})"}, {}, false});
    server.enqueue(v2_path, {503, "application/json", {R"({"title":"Service Unavailable"})"}, {}, false});
    ScriptedResponse silent{200, "application/json", {"\r\n"}};  // a keep-alive, then a cut: no data
    silent.cut = true;
    server.enqueue(v2_path, silent);
    server.enqueue(v2_path, {503, "application/json", {R"({"title":"Service Unavailable"})"}, {}, false});
    ScriptedResponse ok{200, "application/json", {framed(tweets, 3, 6)}};
    ok.hold = 10s;
    server.enqueue(v2_path, ok);
    Harness h(v2_options(server));
    REQUIRE(h.wait_for(6));
    // 420: 60 s. A connection that delivered, cut: 250 ms. 429 after that: 60 s again, not
    // 120 s. 503: 5 s. Cut without data: 500 ms (the network schedule's second step: no
    // data since its first). 503 again without data in between: 10 s.
    CHECK(h.recorded_delays() == std::vector<std::chrono::milliseconds>{60s, 250ms, 60s, 5s, 500ms, 10s});
}

TEST_CASE("stream: a v2 connection silent for 25 s is replaced after X's 20 s", "[streams][slow]") {
    const auto tweets = thousand_tweets();
    ScriptServer server;
    ScriptedResponse silent{200, "application/json", {framed(tweets, 0, 3)}};
    silent.hold = 25s;
    server.enqueue(v2_path, silent);
    ScriptedResponse next{200, "application/json", {framed(tweets, 3, 6)}};
    next.hold = 10s;
    server.enqueue(v2_path, next);
    Harness h(v2_options(server));  // no stall_timeout given: the API's own
    REQUIRE(h.wait_for(6, 40s));
    const auto requests = server.requests();
    REQUIRE(requests.size() == 2);
    const auto replaced_after = std::chrono::duration_cast<std::chrono::milliseconds>(requests[1].at - requests[0].at);
    INFO("replaced after " << replaced_after.count() << " ms");
    CHECK(replaced_after >= 20s);
    CHECK(replaced_after < 23s);
    CHECK(h.metrics.render_prometheus().find("birdwatch_stream_reconnects_total{cause=\"stall\"} 1") != std::string::npos);
}

TEST_CASE("stream: 401 is fatal and names the credential, without retrying", "[streams]") {
    ScriptServer server;
    server.enqueue(v2_path, {401, "application/json", {R"({"title":"Unauthorized","detail":"Unauthorized"})"}, {}, false});
    Harness h(v2_options(server));
    REQUIRE(wait_until([&] { return h.source->finished(); }, 10s));
    CHECK(h.source->fatal_error().find("HTTP 401: X rejected the bearer token") != std::string::npos);
    CHECK(h.recorded_delays().empty());
    CHECK(server.requests().size() == 1);
}

TEST_CASE("stream v1.1: statuses/filter is POSTed with track and signed with OAuth 1.0a", "[streams][oauth]") {
    ScriptServer server;
    const std::string tweet = R"({"id_str":"7","text":"hi"})";
    ScriptedResponse stream{200, "application/json", {std::to_string(tweet.size() + 2) + "\r\n" + tweet + "\r\n\r\n"}};
    stream.hold = 10s;
    server.enqueue("/1.1/statuses/filter.json", stream);
    StreamOptions o;
    o.api = StreamOptions::Api::x_v1;
    o.base_url = server.base_url();
    o.oauth = {"ckey", "csecret", "token", "tsecret"};
    o.track = "cats,dogs and birds";
    o.delimited = true;
    Harness h(o);
    REQUIRE(h.wait_for(1));
    CHECK(h.messages() == std::vector<std::string>{R"({"id_str":"7","text":"hi"})"});
    const RecordedRequest r = server.requests().at(0);
    CHECK(r.method == "POST");
    CHECK(r.body == "track=cats%2Cdogs%20and%20birds&stall_warnings=true&delimited=length");
    CHECK(r.headers.at("content-type") == "application/x-www-form-urlencoded");
    // The signature must be the one our signer gives for exactly what was sent.
    const std::string auth = r.headers.at("authorization");
    auto field = [&](const std::string& name) {
        const auto at = auth.find(name + "=\"");
        REQUIRE(at != std::string::npos);
        const auto start = at + name.size() + 2;
        return auth.substr(start, auth.find('"', start) - start);
    };
    const std::string nonce = field("oauth_nonce"), timestamp = field("oauth_timestamp");
    const std::string expected = oauth1::authorization_header(
        "POST", server.base_url() + "/1.1/statuses/filter.json",
        {{"track", "cats,dogs and birds"}, {"stall_warnings", "true"}, {"delimited", "length"}}, o.oauth, nonce, timestamp);
    CHECK(auth == expected);
    CHECK(field("oauth_consumer_key") == "ckey");
    CHECK(field("oauth_token") == "token");
}

TEST_CASE("v2 rules: adds the missing, deletes the stale, surfaces dry-run rejections with X's message", "[streams]") {
    ScriptServer server;
    const std::string rules_path = "/2/tweets/search/stream/rules";
    server.enqueue(rules_path, {200, "application/json",
                                {R"({"data":[{"id":"11","value":"cats","tag":"c"},{"id":"12","value":"old rule"}],"meta":{"result_count":2}})"},
                                {}, false});
    server.enqueue(rules_path, {200, "application/json",
                                {R"({"meta":{"summary":{"created":1,"not_created":0,"valid":1,"invalid":1}},"errors":[{"value":"(bad","title":"Invalid Rule","details":["Rules must have balanced parentheses"],"type":"https://api.twitter.com/2/problems/invalid-rules"}]})"},
                                {}, false});
    server.enqueue(rules_path, {201, "application/json", {R"({"data":[{"id":"13","value":"dogs"}],"meta":{"summary":{"created":1}}})"}, {}, false});
    server.enqueue(rules_path, {200, "application/json", {R"({"meta":{"summary":{"deleted":1}}})"}, {}, false});
    const RulesSyncResult result =
        sync_rules(server.base_url(), "tok", {{"cats", "c"}, {"dogs", ""}, {"(bad", ""}});
    INFO(result.error);
    REQUIRE(result.ok);
    CHECK(result.added == std::vector<std::string>{"dogs"});
    CHECK(result.deleted == std::vector<std::string>{"old rule"});
    CHECK(result.rejected == std::vector<std::string>{"(bad: Invalid Rule: Rules must have balanced parentheses"});
    const auto requests = server.requests();
    REQUIRE(requests.size() == 4);
    CHECK(requests[0].method == "GET");
    CHECK(requests[1].target == rules_path + "?dry_run=true");
    CHECK(nlohmann::json::parse(requests[1].body) == nlohmann::json::parse(R"({"add":[{"value":"dogs"},{"value":"(bad"}]})"));
    CHECK(nlohmann::json::parse(requests[2].body) == nlohmann::json::parse(R"({"add":[{"value":"dogs"}]})"));
    CHECK(nlohmann::json::parse(requests[3].body) == nlohmann::json::parse(R"({"delete":{"ids":["12"]}})"));
    CHECK(requests[3].headers.at("authorization") == "Bearer tok");

    ScriptServer denied;
    denied.enqueue(rules_path, {403, "application/json", {R"({"title":"Forbidden"})"}, {}, false});
    const RulesSyncResult refused = sync_rules(denied.base_url(), "tok", {{"cats", ""}});
    CHECK_FALSE(refused.ok);
    CHECK(refused.http_status == 403);
}
