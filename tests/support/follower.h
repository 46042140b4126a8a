#pragma once
// What whole-system tests need to judge delivery: a client that does exactly what
// docs/protocol.md asks of one (and nothing more), the stored set it should end with,
// and selective queries over the synthetic corpus.

#include "common/query/query.h"
#include "common/query/tokens.h"
#include "common/store/sqlite_store.h"
#include "common/tweet_parser.h"
#include "ingest/sources/synthetic_corpus.h"
#include "tests/support/process.h"
#include "tests/support/ws_client.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace birdwatch::test {

// One subscription: history paged to its end, live tweets, and on `gap` the ids in
// between resumed from the store (resumed pages followed). Every tweet id is kept once;
// repeats are counted, and so are tweets that do not carry its query.
struct Follower {
    std::unique_ptr<WsClient> ws;
    std::string query, qid;
    std::set<std::string> got;          // tweet ids, from history, live and resume
    std::set<std::string> qids_seen;    // every qid named by the live payloads it received
    std::size_t read = 0, duplicates = 0, strays = 0, gaps = 0, live = 0, reconnects = 0;
    std::size_t resuming = 0;  // gaps whose resume has not come to its last page yet
    bool history_done = false;
    // simdjson's parser lives in a shared library: under ThreadSanitizer it runs uninstrumented,
    // so a test's own reading of thousands of messages does not starve the daemons it judges.
    simdjson::dom::parser parser;

    // `history`: page the history too (a replica with a store).
    Follower(WsIo& io, unsigned short port, std::string text, bool history = true)
        : ws(std::make_unique<WsClient>(io)), query(std::move(text)), history_done(!history) {
        REQUIRE(ws->connect(port));
        qid = parse_query(query).query->id;
        ws->send(nlohmann::json{{"type", "subscribe"}, {"query", query}}.dump());
        if (history) ws->send(nlohmann::json{{"type", "history"}, {"qid", qid}, {"size", 100}}.dump());
    }

    // A closed connection (its replica went away) is opened again, the query subscribed
    // again, and everything after the newest tweet it had resumed (docs/protocol.md).
    // True when it was closed and is open again.
    bool reconnect_if_closed(WsIo& io, unsigned short port) {
        if (ws->is_open()) return false;
        pump();  // what arrived before the close counts
        auto again = std::make_unique<WsClient>(io);
        if (!again->connect(port)) return false;  // tried again on the next call
        ws = std::move(again);
        ++reconnects;
        ws->send(nlohmann::json{{"type", "subscribe"}, {"query", query}}.dump());
        std::uint64_t newest = 0;
        for (const auto& id : got) newest = std::max<std::uint64_t>(newest, std::stoull(id));
        ++resuming;
        ws->send(nlohmann::json{{"type", "resume"}, {"qid", qid}, {"since_id", std::to_string(newest)}}.dump());
        return true;
    }

    // Reads and forgets (a benchmark's load: what arrives is not kept).
    void take_messages_only() { ws->take_messages(); }

    void pump() {
        for (const auto& text : ws->take_messages()) {
            simdjson::dom::element m;
            if (parser.parse(text).get(m)) FAIL("unreadable message to " << query << ": " << text);
            const auto record = [&](simdjson::dom::element tweet) {
                if (!got.insert(std::string(tweet["id"].get_string().value())).second) ++duplicates;
            };
            const std::string_view type = m["type"].get_string().value_unsafe();
            if (type == "error") FAIL("error reply to " << query << ": " << text);
            if (type == "tweet") {
                ++live;
                bool carries_own = false;
                for (const auto q : m["qids"].get_array()) {
                    const std::string_view one = q.get_string().value_unsafe();
                    carries_own |= one == qid;
                    qids_seen.emplace(one);
                }
                if (carries_own) record(m["tweet"]);
                else ++strays;
            } else if (type == "history") {
                for (const auto t : m["tweets"].get_array()) record(t);
                if (m["next_before"].is_null()) history_done = true;
                else
                    ws->send(nlohmann::json{{"type", "history"}, {"qid", qid}, {"size", 100},
                                            {"before", std::string(m["next_before"].get_string().value())}}.dump());
            } else if (type == "gap") {
                ++gaps;
                ++resuming;
                ws->send(nlohmann::json{{"type", "resume"}, {"qid", qid},
                                        {"since_id", std::string(m["after_id"].get_string().value())},
                                        {"before_id", std::string(m["before_id"].get_string().value())}}.dump());
            } else if (type == "resumed") {
                for (const auto t : m["tweets"].get_array()) record(t);
                if (m["next_since"].is_string())
                    ws->send(nlohmann::json{{"type", "resume"}, {"qid", qid},
                                            {"since_id", std::string(m["next_since"].get_string().value())},
                                            {"before_id", std::string(m["before_id"].get_string().value())}}.dump());
                else if (resuming > 0)
                    --resuming;
            }
        }
    }
    // Its history and every resume have come to their last page.
    bool settled() const { return history_done && resuming == 0; }
};

// Every tweet the SQLite store at `db` holds that matches `query`, by id.
inline std::set<std::string> stored_matches(const std::string& db, const std::string& query) {
    SqliteStore store({db, true});
    simdjson::dom::parser parser;
    const QueryParse parsed = parse_query(query);
    REQUIRE(parsed.query);
    std::set<std::string> ids;
    PageRequest page;
    page.size = 1000;
    page.max_candidates = 1000000;
    while (true) {
        StoreStatus status;
        const HistoryPage got = store.history(*parsed.query, page, status);
        REQUIRE(status.ok());
        for (const auto& json : got.tweets) ids.emplace(parser.parse(json)["id"].get_string().value());
        if (!got.next) return ids;
        page.before = got.next;
    }
}

// One-word queries over the synthetic corpus of `seed`, most frequent first, from rank
// `skip` on (the further down, the more selective).
inline std::vector<std::string> synthetic_words(std::uint64_t seed, std::size_t count, std::size_t skip = 0) {
    std::map<std::string, int> frequency;
    SyntheticCorpus corpus(seed, 1700000000000, 1);
    TweetParser parser;
    std::vector<Tweet> sample;
    for (int i = 0; i < 3000; ++i) parser.parse(corpus.next(), sample);
    for (const Tweet& t : sample) {
        std::vector<std::string> tokens;
        tokenize(t.text, tokens);
        for (const auto& token : tokens)
            if (const auto parsed = parse_query(token); parsed.query && parsed.query->canonical == token) ++frequency[token];
    }
    std::vector<std::pair<int, std::string>> ranked;
    for (const auto& [word, n] : frequency) ranked.emplace_back(-n, word);
    std::sort(ranked.begin(), ranked.end());
    REQUIRE(ranked.size() >= skip + count);
    std::vector<std::string> words;
    for (std::size_t i = skip; i < skip + count; ++i) words.push_back(ranked[i].second);
    return words;
}

// Pumps every follower until `done` holds or `timeout` passes.
template <typename Done>
bool pump_until(std::vector<std::unique_ptr<Follower>>& followers, Done done, std::chrono::milliseconds timeout) {
    return wait_until([&] {
        for (auto& f : followers) f->pump();
        return done();
    }, timeout);
}

inline bool all_settled(const std::vector<std::unique_ptr<Follower>>& followers) {
    return std::all_of(followers.begin(), followers.end(), [](const auto& f) { return f->settled(); });
}

inline std::size_t live_total(const std::vector<std::unique_ptr<Follower>>& followers) {
    std::size_t n = 0;
    for (const auto& f : followers) n += f->live;
    return n;
}

// Each follower holds exactly the store's matching set, nothing twice, no stray tweet.
inline void check_complete(const std::vector<std::unique_ptr<Follower>>& followers, const std::string& db) {
    std::map<std::string, std::set<std::string>> expected;
    for (const auto& f : followers) {
        if (!expected.count(f->query)) expected[f->query] = stored_matches(db, f->query);
        std::vector<std::string> missing, extra;
        std::set_difference(expected[f->query].begin(), expected[f->query].end(), f->got.begin(), f->got.end(),
                            std::back_inserter(missing));
        std::set_difference(f->got.begin(), f->got.end(), expected[f->query].begin(), expected[f->query].end(),
                            std::back_inserter(extra));
        INFO("query " << f->query << ": " << f->got.size() << " received, " << expected[f->query].size()
                      << " stored, " << missing.size() << " missing, " << extra.size() << " not stored, "
                      << f->gaps << " gaps, " << f->reconnects << " reconnects");
        CHECK(missing.empty());
        CHECK(extra.empty());
        CHECK(f->duplicates == 0);
        CHECK(f->strays == 0);
    }
}

}  // namespace birdwatch::test
