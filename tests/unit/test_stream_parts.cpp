#include "bench/workload.h"
#include "ingest/sources/synthetic_corpus.h"
#include "ingest/stream/framer.h"
#include "ingest/stream/oauth1.h"
#include "ingest/stream/reconnect_policy.h"
#include "tests/support/shared_data.h"

#include <catch2/catch.hpp>

#include <random>

using namespace birdwatch;
using namespace std::chrono_literals;

namespace {

struct Captured {
    std::vector<std::string> messages;
    int keep_alives = 0;
    std::vector<std::size_t> oversized;
    int malformed = 0;
};

Framer make_framer(Framer::Mode mode, std::size_t max, Captured& c) {
    return Framer(mode, max,
                  {[&](std::string_view m) { c.messages.emplace_back(m); }, [&] { ++c.keep_alives; },
                   [&](std::size_t n) { c.oversized.push_back(n); }, [&](std::string_view) { ++c.malformed; }});
}

// 1,000 messages: real tweets when the shared data is there, synthetic otherwise,
// with control messages and keep-alives mixed in, framed as the APIs frame them.
std::vector<std::string> thousand_messages() {
    std::vector<std::string> lines = test::shared_lines("v1-stream.jsonl");
    if (lines.size() < 1000) {
        SyntheticCorpus corpus(3, 1700000000000, 10);
        while (lines.size() < 1000) lines.push_back(corpus.next());
    }
    lines.resize(1000);
    return lines;
}

std::string newline_stream(const std::vector<std::string>& messages) {
    std::string s;
    for (std::size_t i = 0; i < messages.size(); ++i) {
        s += messages[i] + "\r\n";
        if (i % 50 == 0) s += "\r\n";  // keep-alive
    }
    return s;
}

std::string delimited_stream(const std::vector<std::string>& messages) {
    std::string s;
    for (std::size_t i = 0; i < messages.size(); ++i) {
        s += std::to_string(messages[i].size() + 2) + "\r\n" + messages[i] + "\r\n";
        if (i % 50 == 0) s += "\r\n";
    }
    return s;
}

Captured feed_in_chunks(Framer::Mode mode, const std::string& stream, const std::function<std::size_t()>& next_size) {
    Captured c;
    Framer framer = make_framer(mode, 1 << 20, c);
    for (std::size_t at = 0; at < stream.size();) {
        const std::size_t n = std::min(next_size(), stream.size() - at);
        framer.feed(std::string_view(stream).substr(at, n));
        at += n;
    }
    return c;
}

}  // namespace

TEST_CASE("framing: the same 1,000 messages whether they arrive in one chunk, in 1-byte chunks or in random chunks",
          "[streams]") {
    const auto messages = thousand_messages();
    for (auto mode : {Framer::Mode::newline, Framer::Mode::delimited}) {
        INFO((mode == Framer::Mode::newline ? "newline" : "delimited=length"));
        const std::string stream = mode == Framer::Mode::newline ? newline_stream(messages) : delimited_stream(messages);
        std::mt19937 random(17);
        const Captured whole = feed_in_chunks(mode, stream, [&] { return stream.size(); });
        const Captured bytes = feed_in_chunks(mode, stream, [] { return std::size_t{1}; });
        const Captured mixed = feed_in_chunks(mode, stream, [&] { return std::size_t{1} + random() % 3000; });
        CHECK(whole.messages == messages);
        CHECK(bytes.messages == messages);
        CHECK(mixed.messages == messages);
        CHECK(whole.keep_alives == 20);
        CHECK(bytes.keep_alives == 20);
        CHECK(mixed.keep_alives == 20);
    }
}

TEST_CASE("framing: a message over the limit is skipped without buffering it, and framing resumes", "[streams]") {
    for (auto mode : {Framer::Mode::newline, Framer::Mode::delimited}) {
        Captured c;
        Framer framer = make_framer(mode, 100, c);
        const std::string big(5000, 'x');
        const std::vector<std::string> messages = {R"({"a":1})", big, R"({"b":2})"};
        const std::string stream = mode == Framer::Mode::newline ? newline_stream(messages) : delimited_stream(messages);
        for (char ch : stream) {
            framer.feed(std::string_view(&ch, 1));
            CHECK(framer.buffered() <= 102);  // never holds the oversized message
        }
        CHECK(c.messages == std::vector<std::string>{R"({"a":1})", R"({"b":2})"});
        REQUIRE(c.oversized.size() == 1);
        CHECK(c.oversized[0] >= 5000);
    }
}

TEST_CASE("framing: a bad length line is reported and skipped, and reset forgets a partial message", "[streams]") {
    Captured c;
    Framer framer = make_framer(Framer::Mode::delimited, 1000, c);
    framer.feed("abc\r\n9\r\n{\"x\":1}\r\n");
    CHECK(c.malformed == 1);
    CHECK(c.messages == std::vector<std::string>{R"({"x":1})"});
    Captured n;
    Framer lines = make_framer(Framer::Mode::newline, 1000, n);
    lines.feed(R"({"cut":"in the mid)");
    lines.reset();  // the connection dropped mid-object
    lines.feed("dle\r\n{\"ok\":1}\r\n");
    CHECK(n.messages == std::vector<std::string>{"dle", R"({"ok":1})"});  // the fragment is a malformed line later
}

TEST_CASE("framing: a garbage line too long to be a length is skipped to its end, however it is chunked "
          "(found by fuzz_stream_framing)",
          "[streams]") {
    // Its tail ends in digits: read as a length, it would swallow the next message.
    const std::string stream = std::string(40, 'z') + "17\r\n9\r\n{\"x\":1}\r\n\r\n";
    for (std::size_t chunk : {stream.size(), std::size_t{1}, std::size_t{5}, std::size_t{13}, std::size_t{33}}) {
        INFO("chunks of " << chunk);
        Captured c;
        Framer framer = make_framer(Framer::Mode::delimited, 1000, c);
        for (std::size_t at = 0; at < stream.size(); at += chunk) framer.feed(std::string_view(stream).substr(at, chunk));
        CHECK(c.malformed == 1);
        CHECK(c.keep_alives == 1);  // the blank line at the end, not the garbage line's end
        CHECK(c.messages == std::vector<std::string>{R"({"x":1})"});
    }
}

TEST_CASE("OAuth 1.0a: X's published signature example, reproduced byte for byte", "[streams][oauth]") {
    const oauth1::Params params = {
        {"status", "Hello Ladies + Gentlemen, a signed OAuth request!"},
        {"include_entities", "true"},
        {"oauth_consumer_key", "xvz1evFS4wEEPTGEFPHBog"},
        {"oauth_nonce", "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"},
        {"oauth_signature_method", "HMAC-SHA1"},
        {"oauth_timestamp", "1318622958"},
        {"oauth_token", "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb"},
        {"oauth_version", "1.0"},
    };
    const std::string consumer_secret = "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw";
    const std::string token_secret = "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE";
    const std::string base = oauth1::signature_base("POST", "https://api.twitter.com/1.1/statuses/update.json", params);
    CHECK(base ==
          "POST&https%3A%2F%2Fapi.twitter.com%2F1.1%2Fstatuses%2Fupdate.json&include_entities%3Dtrue%26oauth_consumer_key"
          "%3Dxvz1evFS4wEEPTGEFPHBog%26oauth_nonce%3DkYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg%26oauth_signature_method%"
          "3DHMAC-SHA1%26oauth_timestamp%3D1318622958%26oauth_token%3D370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb%"
          "26oauth_version%3D1.0%26status%3DHello%2520Ladies%2520%252B%2520Gentlemen%252C%2520a%2520signed%2520OAuth%252"
          "0request%2521");
    CHECK(oauth1::sign(base, consumer_secret, token_secret) == "hCtSmYh+iHYCEqBWrE7C7hYmtUk=");
    CHECK(oauth1::sign(oauth1::signature_base("POST", "https://api.x.com/1.1/statuses/update.json", params),
                       consumer_secret, token_secret) == "Ls93hJiZbQ3akF3HF3x1Bz8/zU4=");
    CHECK(oauth1::sign(oauth1::signature_base("POST", "https://api.twitter.com/1/statuses/update.json", params),
                       consumer_secret, token_secret) == "tnnArxj06cWHq44gCs1OSKk/jLY=");

    const oauth1::Credentials credentials{"xvz1evFS4wEEPTGEFPHBog", consumer_secret,
                                          "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb", token_secret};
    const std::string header = oauth1::authorization_header(
        "POST", "https://api.twitter.com/1.1/statuses/update.json",
        {{"status", "Hello Ladies + Gentlemen, a signed OAuth request!"}, {"include_entities", "true"}}, credentials,
        "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg", "1318622958");
    CHECK(header.find(R"(oauth_signature="hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D")") != std::string::npos);
    CHECK(header.rfind("OAuth oauth_consumer_key=\"xvz1evFS4wEEPTGEFPHBog\"", 0) == 0);
    CHECK(oauth1::make_nonce().size() == 32);
    CHECK(oauth1::make_nonce() != oauth1::make_nonce());
}

TEST_CASE("reconnect schedules by cause, as X documents them", "[streams][backoff]") {
    using Cause = ReconnectPolicy::Cause;
    ReconnectPolicy policy(60s);
    auto t = ReconnectPolicy::Clock::time_point{} + 1000h;
    std::vector<std::chrono::milliseconds> network;
    for (int i = 0; i < 66; ++i) network.push_back(policy.failed(Cause::network, t += 1s));
    CHECK(network[0] == 250ms);
    CHECK(network[1] == 500ms);
    CHECK(network[2] == 750ms);
    CHECK(network[63] == 16000ms);
    CHECK(network[65] == 16000ms);

    ReconnectPolicy http;
    std::vector<long long> seconds;
    for (int i = 0; i < 8; ++i) seconds.push_back(std::chrono::duration_cast<std::chrono::seconds>(http.failed(Cause::http, t += 1s)).count());
    CHECK(seconds == std::vector<long long>{5, 10, 20, 40, 80, 160, 320, 320});

    ReconnectPolicy limited;
    CHECK(limited.failed(ReconnectPolicy::classify_status(420), t) == 60s);
    CHECK(limited.failed(ReconnectPolicy::classify_status(429), t) == 120s);
    CHECK(limited.failed(Cause::rate_limited, t) == 240s);
    CHECK(ReconnectPolicy::classify_status(503) == Cause::http);
    CHECK(ReconnectPolicy::is_fatal_status(401));
    CHECK(ReconnectPolicy::is_fatal_status(403));
    CHECK_FALSE(ReconnectPolicy::is_fatal_status(404));

    // A short-lived connection does not reset the schedule; a healthy one does.
    limited.connected(t);
    CHECK(limited.failed(Cause::rate_limited, t + 10s) == 480s);
    limited.connected(t + 20s);
    CHECK(limited.failed(Cause::rate_limited, t + 20s + 61s) == 60s);
    CHECK(limited.failed(Cause::network, t + 90s) == 250ms);
}

TEST_CASE("reconnect schedules over sequences of faults: data resets them, failures without data keep growing",
          "[streams][backoff]") {
    using Cause = ReconnectPolicy::Cause;
    auto t = ReconnectPolicy::Clock::time_point{} + 1000h;
    const auto cut_after_data = [&](ReconnectPolicy& policy, Cause cause) {
        policy.connected(t += 1s);
        policy.delivered();
        return policy.failed(cause, t += 2s);
    };

    ReconnectPolicy five_cuts;  // each connection worked a moment, then dropped: reconnect at once, every time
    for (int i = 0; i < 5; ++i) CHECK(cut_after_data(five_cuts, Cause::network) == 250ms);

    ReconnectPolicy silent;  // connects, never delivers, drops: the linear schedule grows
    std::vector<std::chrono::milliseconds> delays;
    for (int i = 0; i < 4; ++i) {
        silent.connected(t += 1s);
        delays.push_back(silent.failed(Cause::network, t += 1s));
    }
    CHECK(delays == std::vector<std::chrono::milliseconds>{250ms, 500ms, 750ms, 1000ms});
    CHECK(cut_after_data(silent, Cause::network) == 250ms);

    ReconnectPolicy limited;  // 420, then a connection that worked and was cut, then 429: 60 s again, not 120 s
    CHECK(limited.failed(ReconnectPolicy::classify_status(420), t += 1s) == 60s);
    CHECK(cut_after_data(limited, Cause::network) == 250ms);
    CHECK(limited.failed(ReconnectPolicy::classify_status(429), t += 1s) == 60s);
    CHECK(limited.failed(ReconnectPolicy::classify_status(429), t += 1s) == 120s);  // again without data: doubles

    ReconnectPolicy mixed;  // 503, 503, then a stall after data, then 503: the HTTP schedule restarts at 5 s
    CHECK(mixed.failed(Cause::http, t += 1s) == 5s);
    CHECK(mixed.failed(Cause::http, t += 1s) == 10s);
    CHECK(cut_after_data(mixed, Cause::stall) == 250ms);
    CHECK(mixed.failed(Cause::http, t += 1s) == 5s);
}
