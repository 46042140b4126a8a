// Live search through the whole system (redis-server, ingest on a replayed stream,
// a fanout with the SQLite store, WebSocket clients): each tweet once, the first line
// matched, deletions honoured.

#include "tests/support/daemons.h"
#include "tests/support/live_search.h"
#include "tests/support/redis_server.h"
#include "tests/support/ws_client.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>

using namespace birdwatch;
using namespace birdwatch::test;
using namespace std::chrono_literals;

namespace {

std::string v1_tweet(const std::string& id, const std::string& text) {
    return nlohmann::json{{"id_str", id}, {"text", text}, {"created_at", "Thu Nov 05 05:05:39 +0000 2015"},
                          {"user", {{"id_str", "7"}, {"screen_name", "alice"}, {"name", "Alice"}}}, {"lang", "en"}}
        .dump();
}

std::string v1_delete(const std::string& id) {
    return R"({"delete":{"status":{"id":)" + id + R"(,"id_str":")" + id + R"(","user_id":7},"timestamp_ms":"1446699939000"}})";
}

std::map<std::string, int> delivered_ids(const WsClient& client) {
    std::map<std::string, int> ids;
    for (const auto& payload : tweet_payloads(client)) ++ids[nlohmann::json::parse(payload)["tweet"]["id"]];
    return ids;
}

std::string reply_of(WsClient& client, const std::string& request, const std::string& type) {
    const std::size_t before = client.message_count();
    client.send(request);
    std::string found;
    wait_until([&] {
        const auto all = client.messages();
        for (std::size_t i = before; i < all.size(); ++i)
            if (all[i].find("\"type\":\"" + type + "\"") != std::string::npos) found = all[i];
        return !found.empty();
    }, 5s);
    return found;
}

}  // namespace

TEST_CASE("a replayed stream that repeats ids and deletes one: each client gets each id once, the first line is "
          "matched, and the deletion empties the store and reaches the client", "[live-search]") {
    TempDir dir;
    RedisServer redis{dir};
    const std::string db = dir.file("tweets.db");
    const unsigned short port = free_port();
    ChildProcess fanout = start_fanout(dir, "fanout", redis.port(), port, {"--store.kind=sqlite", "--store.sqlite.path=" + db});
    WsIo io;
    WsClient client(io);
    REQUIRE(client.connect(port));
    subscribe(client, "birdwatch");
    REQUIRE(wait_until([&] { return redis.command({"HLEN", "birdwatch:queries"}) == "1"; }, 5s));

    {
        std::ofstream replay(dir.file("stream.jsonl"));
        replay << v1_tweet("1001", "birdwatch: the very first line") << "\n"
               << v1_tweet("1002", "birdwatch two") << "\n"
               << v1_tweet("1001", "birdwatch: the very first line") << "\n"  // a reconnect's repeat
               << v1_tweet("1003", "birdwatch three") << "\n"
               << v1_tweet("1002", "birdwatch two") << "\n"
               << v1_delete("1002") << "\n"
               << v1_tweet("1004", "birdwatch four") << "\n";
    }
    ChildProcess ingest = start_ingest(dir, "ingest", redis.port(),
                                       {"--source.kind=replay", "--source.replay.path=" + dir.file("stream.jsonl"),
                                        "--store.sqlite.path=" + db, "--http.port=" + std::to_string(free_port())});
    REQUIRE(wait_until([&] { return delivered_ids(client).size() >= 4; }, 10s));
    REQUIRE(wait_until([&] {
        for (const auto& m : client.messages())
            if (m.find(R"("type":"delete","id":"1002")") != std::string::npos) return true;
        return false;
    }, 5s));
    std::this_thread::sleep_for(300ms);  // anything repeated would have arrived by now
    CHECK(delivered_ids(client) == std::map<std::string, int>{{"1001", 1}, {"1002", 1}, {"1003", 1}, {"1004", 1}});

    // The store: 1002 is gone, for get and for history; the others stay.
    REQUIRE(wait_until([&] {
        return reply_of(client, R"({"type":"get","id":"1002"})", "not_found").find("1002") != std::string::npos;
    }, 5s));
    CHECK(reply_of(client, R"({"type":"get","id":"1003"})", "found").find("birdwatch three") != std::string::npos);
    const auto history = nlohmann::json::parse(reply_of(client, R"({"type":"history","query":"birdwatch","size":10})", "history"));
    std::vector<std::string> ids;
    for (const auto& t : history["tweets"]) ids.push_back(t["id"]);
    CHECK(ids == std::vector<std::string>{"1004", "1003", "1001"});
}
