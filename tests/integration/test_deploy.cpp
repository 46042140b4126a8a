// The shipped deployment files, checked by their own tools, and the shipped nginx
// config in front of three real fanout replicas.

#include "common/store/sqlite_store.h"
#include "tests/support/daemons.h"
#include "tests/support/live_search.h"
#include "tests/support/redis_server.h"
#include "tests/support/skip.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <regex>
#include <map>
#include <set>
#include <sstream>

using namespace birdwatch;
using namespace birdwatch::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// The shipped nginx.conf with the replicas, the listen address and its scratch paths
// moved onto this test's ports and directory.
std::string render_nginx(const TempDir& dir, unsigned short listen, const std::vector<unsigned short>& replicas) {
    std::string conf = read_file(BIRDWATCH_SOURCE_DIR "/config/nginx.conf");
    for (std::size_t i = 0; i < replicas.size(); ++i)
        conf = std::regex_replace(conf, std::regex("server fanout" + std::to_string(i + 1) + ":8080"),
                                  "server 127.0.0.1:" + std::to_string(replicas[i]));
    conf = std::regex_replace(conf, std::regex("listen 80;"), "listen 127.0.0.1:" + std::to_string(listen) + ";");
    conf = std::regex_replace(conf, std::regex("/tmp/birdwatch-nginx"), dir.path() + "/nginx");
    const std::string path = dir.file("nginx.conf");
    std::ofstream(path) << conf;
    return path;
}

int run(const std::vector<std::string>& argv, const TempDir& dir, const std::string& log) {
    ChildProcess p(argv, dir.file(log));
    return p.wait_exit(60s).value_or(-1);
}

}  // namespace

TEST_CASE("deploy files: nginx -t accepts the shipped config", "[deploy]") {
    TempDir dir;
    const std::string nginx = find_program("nginx");
    REQUIRE_FALSE(nginx.empty());  // installed by scripts/install-deps
    const std::string conf = render_nginx(dir, free_port(), {free_port(), free_port(), free_port()});
    CHECK(run({nginx, "-t", "-c", conf}, dir, "nginx-t.log") == 0);
}

TEST_CASE("deploy files: systemd-analyze verify accepts both units", "[deploy]") {
    const std::string analyze = find_program("systemd-analyze");
    if (analyze.empty()) SKIP_TEST("systemd-analyze (Debian's systemd) is not installed");
    TempDir dir;
    // The units as installed, with ExecStart pointing at this build's binaries.
    for (const auto& [unit, binary, name] : {std::tuple{"birdwatch-ingest.service", BIRDWATCH_INGEST_BIN, "birdwatch-ingest.service"},
                                             std::tuple{"birdwatch-fanout@.service", BIRDWATCH_FANOUT_BIN, "birdwatch-fanout@8080.service"}}) {
        std::string text = read_file(std::string(BIRDWATCH_SOURCE_DIR "/config/systemd/") + unit);
        text = std::regex_replace(text, std::regex("/usr/bin/birdwatch-(ingest|fanout)"), binary);
        std::ofstream(dir.file(name)) << text;
        const int rc = run({analyze, "verify", dir.file(name)}, dir, "verify.log");
        INFO(unit << ":\n" << read_file(dir.file("verify.log")));
        CHECK(rc == 0);
    }
}

TEST_CASE("deploy files: docker-compose config accepts every stack and override", "[deploy]") {
    const std::string compose = find_program("docker-compose");
    if (compose.empty()) SKIP_TEST("docker-compose is not installed");
    TempDir dir;
    const std::string files = BIRDWATCH_SOURCE_DIR "/docker/docker-compose";
    for (const auto& stack : std::vector<std::vector<std::string>>{{".yml"},
                                                                  {".yml", ".cluster.yml"},
                                                                  {".sqlite.yml"},
                                                                  {".sqlite.yml", ".offline.yml"},
                                                                  {".yml", ".offline.yml"}}) {
        std::vector<std::string> argv{compose};
        for (const auto& file : stack) argv.insert(argv.end(), {"-f", files + file});
        argv.insert(argv.end(), {"config", "--quiet"});
        const int rc = run(argv, dir, "compose.log");
        INFO("docker-compose" << stack[0] << (stack.size() > 1 ? " + " + stack[1] : "") << ":\n"
                              << read_file(dir.file("compose.log")));
        CHECK(rc == 0);
    }
}

TEST_CASE("nginx with the shipped config in front of 3 replicas: 300 clients spread over all, "
          "a killed replica's clients reconnect through nginx and resume without missing anything",
          "[deploy]") {
    TempDir dir;
    RedisServer redis(dir);
    const std::string db = dir.file("ingest.db");
    // 100 tweets/s: 300 clients then take some 20,000 messages a second through the test's one
    // WebSocket thread, which must still notice the killed replica's closes promptly.
    ChildProcess ingest = start_ingest(dir, "ingest", redis.port(), {"--source.synthetic.rate=100"});
    REQUIRE(wait_until([&] { return std::ifstream(db).good(); }, 10s));
    const std::vector<unsigned short> ports = {free_port(), free_port(), free_port()};
    std::vector<ChildProcess> replicas;
    for (int i = 0; i < 3; ++i)
        replicas.push_back(start_fanout(dir, "fanout-" + std::to_string(i), redis.port(), ports[i],
                                        {"--store.kind=sqlite", "--store.sqlite.path=" + db, "--stats.interval_ms=0"}));
    const unsigned short front = free_port();
    ChildProcess nginx({find_program("nginx"), "-c", render_nginx(dir, front, ports), "-g", "daemon off;"},
                       dir.file("nginx.log"));
    REQUIRE(wait_until([&] { return http_get(front, "/healthz").status == 200; }, 10s));

    const std::string query = "the OR hoy OR heute";
    WsIo io;
    std::vector<std::unique_ptr<WsClient>> clients;
    for (int i = 0; i < 300; ++i) {
        clients.push_back(std::make_unique<WsClient>(io));
        INFO("client " << i << ": " << clients.back()->error());
        REQUIRE(clients.back()->connect(front));
        subscribe(*clients.back(), query);
    }
    auto connections = [&](unsigned short port) {
        const std::string body = http_get(port, "/metrics").body;
        const auto at = body.find("\nbirdwatch_fanout_connections ");
        return at == std::string::npos ? 0 : std::stoi(body.substr(at + 30));
    };
    for (unsigned short p : ports) {
        INFO("replica on " << p);
        CHECK(connections(p) >= 50);  // least_conn spreads them
    }
    for (auto& c : clients) REQUIRE(wait_until([&] { return tweet_payloads(*c).size() >= 5; }, 15s));

    // Kill the first replica; all of its clients see their connection end.
    const int on_first = connections(ports[0]);
    replicas[0].kill();
    std::vector<std::size_t> dropped;
    REQUIRE(wait_until([&] {
        dropped.clear();
        for (std::size_t i = 0; i < clients.size(); ++i)
            if (!clients[i]->is_open()) dropped.push_back(i);
        return static_cast<int>(dropped.size()) >= on_first;
    }, 10s * sanitizer_slowdown));
    {  // tweets go on while they are away
        SqliteStore store({db, true});
        StoreStatus status;
        const std::uint64_t at_drop = store.count(status);
        REQUIRE(wait_until([&] { return store.count(status) >= at_drop + 100; }, 10s));
    }

    // Each reconnects through nginx, subscribes again and resumes after the newest id it had.
    std::vector<std::set<std::uint64_t>> timelines(clients.size());
    for (std::size_t i : dropped) {
        for (const auto& p : tweet_payloads(*clients[i])) timelines[i].insert(protocol::tweet_id(p));
        auto again = std::make_unique<WsClient>(io);
        REQUIRE(again->connect(front));
        subscribe(*again, query);
        again->send(json{{"type", "resume"}, {"qid", parse_query(query).query->id},
                         {"since_id", std::to_string(*timelines[i].rbegin())}}.dump());
        clients[i] = std::move(again);
    }
    // Resumed pages come oldest first; each names where the next starts (next_since) until
    // the last. Every client walks its pages at once, as reconnecting browsers would.
    std::map<std::size_t, std::size_t> looked_at;  // client -> messages already read
    std::set<std::size_t> resumed;
    if (!wait_until([&] {
        for (std::size_t i : dropped) {
            if (resumed.count(i)) continue;
            const auto fresh = clients[i]->messages_since(looked_at[i]);
            looked_at[i] += fresh.size();
            for (const auto& m : fresh) {
                if (m.find(R"("type":"resumed")") == std::string::npos) continue;
                const json page = json::parse(m);
                if (page["next_since"].is_null())
                    resumed.insert(i);
                else
                    clients[i]->send(json{{"type", "resume"}, {"qid", page["qid"]}, {"since_id", page["next_since"]}}.dump());
            }
        }
        return resumed.size() == dropped.size();
    }, 60s * sanitizer_slowdown))
        FAIL("only " << resumed.size() << " of " << dropped.size() << " clients walked their resumed pages to the end");
    for (std::size_t i : dropped) {
        REQUIRE(wait_until([&] { return tweet_payloads(*clients[i]).size() >= 5; }, 10s));
    }
    CHECK(wait_until([&] { return connections(ports[1]) + connections(ports[2]) == 300; }, 5s));

    // Every stored match between the first and the newest tweet a client saw is in its timeline.
    // Deliveries can run ahead of the store (durable in the spool first): wait until it holds
    // the newest any of them saw, and so everything before it.
    std::uint64_t newest_seen = 0;
    for (std::size_t i : dropped)
        for (const auto& p : tweet_payloads(*clients[i]))
            newest_seen = std::max(newest_seen, protocol::tweet_id(p));
    SqliteStore store({db, true});
    REQUIRE(wait_until([&] {
        StoreStatus status;
        return store.get(std::to_string(newest_seen), status).has_value();
    }, 10s));
    const QueryParse q = parse_query(query);
    StoreStatus status;
    std::vector<std::uint64_t> stored;
    for (std::uint64_t before = 0;;) {
        const HistoryPage page = store.history(*q.query, {PageRequest::Order::newest_first, 500, before, 0, SIZE_MAX}, status);
        REQUIRE(status.ok());
        for (const auto& t : page.tweets) stored.push_back(std::stoull(json::parse(t)["id"].get<std::string>()));
        if (page.next == 0) break;
        before = page.next;
    }
    std::size_t checked = 0;
    for (std::size_t i : dropped) {
        // Live tweets by their id alone (300 clients' thousands of messages: no full parse).
        for (const auto& m : clients[i]->messages()) {
            if (m.find(R"("type":"resumed")") != std::string::npos) {
                const json page = json::parse(m);
                for (const auto& t : page["tweets"]) timelines[i].insert(std::stoull(t["id"].get<std::string>()));
            } else if (m.find(R"("type":"tweet")") != std::string::npos) {
                timelines[i].insert(protocol::tweet_id(m));
            }
        }
        const std::uint64_t first = *timelines[i].begin(), newest = *timelines[i].rbegin();
        std::size_t missing = 0;
        for (std::uint64_t id : stored) missing += id >= first && id <= newest && !timelines[i].count(id);
        INFO("client " << i);
        CHECK(missing == 0);
        ++checked;
    }
    CHECK(checked >= 50);
    nginx.signal(SIGTERM);
}
