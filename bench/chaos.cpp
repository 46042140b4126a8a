// The chaos run: the whole system under attack on purpose, with a tally at the end.
// Redis, the ingest (synthetic source at a steady rate, SQLite store), three fanouts and
// N clients holding Q distinct queries, each client resuming from its last tweet when it
// reconnects. A driver SIGKILLs and restarts Redis, each fanout and the ingest, blocks
// the store, and adds stalled and hostile clients. At the end it prints the tally and
// exits 1 when a promise is broken:
//   - no process exits unless the driver killed it;
//   - the ingest's store books balance in every scrape;
//   - every tweet a client received is in the store, and no client received one twice;
//   - each process's peak RSS stays under its bound.
//   - every client holds every stored match of its query since its first tweet: through
//     its own resume after reconnecting, and through the replica's gap notices when
//     Redis or the ingest went away while it stayed connected.
//
//   birdwatch-bench-chaos [--seconds 300] [--clients 500] [--queries 200] [--rate 100]

#include "common/query/query.h"
#include "common/store/sqlite_store.h"
#include "ingest/sources/synthetic_corpus.h"
#include "common/tweet_parser.h"
#include "tests/support/process.h"
#include "tests/support/store_books.h"
#include "tests/support/ws_client.h"

#include <nlohmann/json.hpp>
#include <sqlite3.h>
#include <sys/socket.h>
#include <csignal>
#include <fstream>
#include <thread>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <unordered_map>
#include <unordered_set>

using namespace birdwatch;
using namespace birdwatch::test;
using namespace std::chrono_literals;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
    int seconds = 300, clients = 500, queries = 200, rate = 100;
};

// A daemon the driver may kill and restart; any other exit is unplanned.
struct Daemon {
    Daemon(std::string name, std::vector<std::string> argv, std::string log, long rss_bound_kib)
        : name(std::move(name)), argv(std::move(argv)), log(std::move(log)), rss_bound_kib(rss_bound_kib) {}

    std::string name;
    std::vector<std::string> argv;
    std::string log;
    long rss_bound_kib;
    ChildProcess process;
    bool up = false;
    long peak_rss_kib = 0;
    int unplanned_exits = 0, kills = 0;

    void start() {
        process = ChildProcess(argv, log);
        up = true;
    }
    void kill() {
        process.kill();
        up = false;
        ++kills;
    }
    void check() {
        if (!up) return;
        if (!process.running()) {
            ++unplanned_exits;
            std::fprintf(stderr, "UNPLANNED EXIT: %s\n%s\n", name.c_str(), process.log_tail(2000).c_str());
            start();
            return;
        }
        peak_rss_kib = std::max(peak_rss_kib, rss_kib(process.pid()));
    }
};

struct Client {
    std::string query, qid;
    std::unique_ptr<WsClient> ws;
    std::set<std::uint64_t> received;
    std::uint64_t first = 0, last = 0;
    std::size_t duplicates = 0, reconnects = 0, errors = 0, gaps = 0;
    bool resume_after_subscribe = false;

    void record(std::uint64_t id) {
        if (!received.insert(id).second) ++duplicates;
        if (first == 0) first = id;
        last = std::max(last, id);
    }
};

std::uint64_t tweet_id(const json& tweet) {
    const json* id = tweet.is_object() && tweet.contains("id") ? &tweet["id"] : nullptr;
    return id && id->is_string() ? std::stoull(id->get<std::string>()) : 0;
}

// Single words of the synthetic corpus that match often enough to be seen, rare enough
// to differ: ranks 30 and below in frequency.
std::vector<std::string> pick_queries(int count) {
    SyntheticCorpus corpus(5, 1700000000000, 10);
    TweetParser parser;
    std::unordered_map<std::string, int> frequency;
    std::vector<Tweet> tweets;
    for (int i = 0; i < 5000; ++i) {
        tweets.clear();
        parser.parse(corpus.next(), tweets);
        for (const Tweet& t : tweets) {
            std::set<std::string> words;
            std::string word;
            for (char c : t.text + " ") {
                if (std::isalpha(static_cast<unsigned char>(c))) word += static_cast<char>(std::tolower(c));
                else {
                    if (word.size() >= 4) words.insert(word);
                    word.clear();
                }
            }
            for (const auto& w : words) ++frequency[w];
        }
    }
    std::vector<std::pair<int, std::string>> ranked;
    for (const auto& [w, n] : frequency) ranked.emplace_back(-n, w);
    std::sort(ranked.begin(), ranked.end());
    std::vector<std::string> out;
    for (std::size_t i = 30; i < ranked.size() && static_cast<int>(out.size()) < count; ++i)
        if (parse_query(ranked[i].second).query) out.push_back(ranked[i].second);
    return out;
}

// Garbage on the wire: a bad handshake, a huge frame header, then nothing.
void hostile(unsigned short port, int kind) {
    const int fd = connect_loopback(port);
    if (fd < 0) return;
    const std::string junk = kind % 2 == 0 ? std::string("GET /ws HTTP/1.1\r\nHost: x\r\n") + std::string(20000, 'A') + "\r\n\r\n"
                                           : std::string("\x81\xff\xff\xff\xff\xff\xff\xff\xff\xff", 10);
    (void)!::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL);
    ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i];
        const int value = std::stoi(argv[i + 1]);
        if (flag == "--seconds") o.seconds = value;
        else if (flag == "--clients") o.clients = value;
        else if (flag == "--queries") o.queries = value;
        else if (flag == "--rate") o.rate = value;
    }
    TempDir dir;
    constexpr long rss_bound_kib = 256 * 1024;
    const unsigned short redis_port = free_port();
    Daemon redis{"redis",
                 {find_program("redis-server"), "--port", std::to_string(redis_port), "--bind", "127.0.0.1", "--save", "",
                  "--appendonly", "no"},
                 dir.file("redis.log"), rss_bound_kib};
    redis.start();
    if (!wait_until([&] { return port_open(redis_port); }, 10s)) {
        std::fprintf(stderr, "redis-server did not start\n");
        return 2;
    }
    const std::string db = dir.file("ingest.db");
    const unsigned short ingest_port = free_port();
    Daemon ingest{"ingest",
                  {BIRDWATCH_INGEST_BIN, "--redis.port", std::to_string(redis_port), "--http.port",
                   std::to_string(ingest_port), "--log.level=warn", "--source.synthetic.rate=" + std::to_string(o.rate),
                   "--store.sqlite.path=" + db, "--store.spool.dir=" + dir.file("spool"), "--registry.sweep_ms=500"},
                  dir.file("ingest.log"), rss_bound_kib};
    std::vector<Daemon> fanouts;
    std::vector<unsigned short> fanout_ports;
    for (int i = 0; i < 3; ++i) {
        fanout_ports.push_back(free_port());
        fanouts.emplace_back("fanout-" + std::to_string(i), std::vector<std::string>
                           {BIRDWATCH_FANOUT_BIN, "--redis.port", std::to_string(redis_port), "--http.port",
                            std::to_string(fanout_ports.back()), "--log.level=warn", "--store.kind=sqlite",
                            "--store.sqlite.path=" + db, "--websocket.slow_close_ms=2000"},
                             dir.file("fanout-" + std::to_string(i) + ".log"), rss_bound_kib);
    }
    ingest.start();
    if (!wait_until([&] { return http_get(ingest_port, "/healthz").status == 200; }, 10s) ||
        !wait_until([&] { return std::ifstream(db).good(); }, 10s)) {
        std::fprintf(stderr, "ingest did not start:\n%s\n", ingest.process.log_tail().c_str());
        return 2;
    }
    for (auto& f : fanouts) f.start();
    for (auto port : fanout_ports)
        if (!wait_until([&] { return http_get(port, "/readyz").status == 200; }, 10s)) {
            std::fprintf(stderr, "a fanout did not become ready\n");
            return 2;
        }

    const std::vector<std::string> queries = pick_queries(o.queries);
    WsIo io;
    std::vector<Client> clients(static_cast<std::size_t>(o.clients));
    std::mt19937 random(7);
    for (std::size_t i = 0; i < clients.size(); ++i) clients[i].query = queries[i % queries.size()];
    std::vector<int> stalled;
    std::size_t unbalanced_scrapes = 0, scrapes = 0, hostile_sent = 0;
    std::string first_unbalanced;

    auto pick_fanout = [&]() -> int {
        std::vector<int> up;
        for (int i = 0; i < 3; ++i)
            if (fanouts[static_cast<std::size_t>(i)].up) up.push_back(i);
        return up.empty() ? -1 : up[random() % up.size()];
    };
    auto connect = [&](Client& c) {
        const int f = pick_fanout();
        if (f < 0) return;
        auto ws = std::make_unique<WsClient>(io);
        if (!ws->connect(fanout_ports[static_cast<std::size_t>(f)], "/ws", 500ms)) return;
        ws->send(json{{"type", "subscribe"}, {"query", c.query}}.dump());
        c.resume_after_subscribe = c.last != 0;
        if (c.ws) ++c.reconnects;
        c.ws = std::move(ws);
    };
    auto pump = [&](Client& c) {
        if (!c.ws || !c.ws->is_open()) {
            if (c.ws) c.ws->take_messages();
            connect(c);
            if (!c.ws) return;
        }
        for (const std::string& text : c.ws->take_messages()) {
            const json m = json::parse(text, nullptr, false);
            const std::string type = m.is_object() && m.contains("type") && m["type"].is_string() ? m["type"].get<std::string>() : "";
            if (type == "tweet") {
                c.record(tweet_id(m["tweet"]));
            } else if (type == "subscribed") {
                c.qid = m["qid"];
                if (c.resume_after_subscribe)
                    c.ws->send(json{{"type", "resume"}, {"qid", c.qid}, {"since_id", std::to_string(c.last)}}.dump());
                c.resume_after_subscribe = false;
            } else if (type == "gap") {  // docs/protocol.md: resume each subscription over the gap
                ++c.gaps;
                if (!c.qid.empty())
                    c.ws->send(json{{"type", "resume"}, {"qid", c.qid}, {"since_id", m["after_id"]},
                                    {"before_id", m["before_id"]}}.dump());
            } else if (type == "resumed") {
                for (const auto& t : m["tweets"]) c.record(tweet_id(t));
                if (m["next_since"].is_string()) {
                    json next = {{"type", "resume"}, {"qid", c.qid}, {"since_id", m["next_since"]}};
                    if (m.contains("before_id")) next["before_id"] = m["before_id"];
                    c.ws->send(next.dump());
                }
            } else if (type == "error") {
                if (++c.errors <= 1) std::fprintf(stderr, "client error: %s\n", text.c_str());
            }
        }
    };

    // The schedule, as fractions of the run: what happens when.
    struct Event {
        double at;
        std::string what;
        bool done = false;
    };
    std::vector<Event> events = {{0.08, "kill redis"},   {0.16, "kill fanout-0"}, {0.24, "kill ingest"},
                                 {0.32, "block store"},  {0.50, "kill fanout-1"}, {0.58, "kill redis"},
                                 {0.66, "kill ingest"},  {0.74, "kill fanout-2"}, {0.80, "kill ingest"}};
    const auto start = Clock::now();
    const auto run_for = std::chrono::seconds(o.seconds);
    sqlite3* blocker = nullptr;
    Clock::time_point unblock_at{};
    auto daemon = [&](const std::string& name) -> Daemon& {
        if (name == "redis") return redis;
        if (name == "ingest") return ingest;
        return fanouts[static_cast<std::size_t>(name.back() - '0')];
    };
    std::map<std::string, Clock::time_point> restart_at;
    const auto block_for = std::chrono::seconds(std::max(5, o.seconds / 10));
    std::fprintf(stderr, "chaos: %d clients, %zu queries, %d tweets/s, %d s\n", o.clients, queries.size(), o.rate,
                 o.seconds);
    auto next_hostile = start;
    while (Clock::now() - start < run_for) {
        const double t = std::chrono::duration<double>(Clock::now() - start) / run_for;
        for (auto& e : events) {
            if (e.done || t < e.at) continue;
            e.done = true;
            std::fprintf(stderr, "chaos t=%.0fs: %s\n", std::chrono::duration<double>(Clock::now() - start).count(),
                         e.what.c_str());
            if (e.what == "block store") {
                sqlite3_open(db.c_str(), &blocker);
                sqlite3_busy_timeout(blocker, 5000);
                sqlite3_exec(blocker, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr);
                unblock_at = Clock::now() + block_for;
            } else {
                const std::string name = e.what.substr(5);
                daemon(name).kill();
                restart_at[name] = Clock::now() + 2s;
            }
        }
        if (blocker && Clock::now() >= unblock_at) {
            sqlite3_exec(blocker, "ROLLBACK", nullptr, nullptr, nullptr);
            sqlite3_close(blocker);
            blocker = nullptr;
        }
        for (auto it = restart_at.begin(); it != restart_at.end();) {
            if (Clock::now() < it->second) {
                ++it;
                continue;
            }
            daemon(it->first).start();
            it = restart_at.erase(it);
        }
        if (Clock::now() >= next_hostile) {  // every 5 s: a stalled client and two hostile ones
            const int f = pick_fanout();
            if (f >= 0) {
                if (stalled.size() < 20) stalled.push_back(connect_and_stall(fanout_ports[static_cast<std::size_t>(f)], queries[0]));
                hostile(fanout_ports[static_cast<std::size_t>(f)], static_cast<int>(hostile_sent));
                hostile(fanout_ports[static_cast<std::size_t>(f)], static_cast<int>(hostile_sent) + 1);
                hostile_sent += 2;
            }
            next_hostile += 5s;
        }
        redis.check();
        ingest.check();
        for (auto& f : fanouts) f.check();
        if (ingest.up) {
            const StoreBooks books = scrape_store_books(ingest_port);
            if (books.scraped) {
                ++scrapes;
                if (!books.balanced() && unbalanced_scrapes++ == 0) first_unbalanced = books.describe();
            }
        }
        for (auto& c : clients) pump(c);
        std::this_thread::sleep_for(100ms);
    }

    // Wind down: the ingest drains to the store (SIGTERM), clients take what is left.
    std::fprintf(stderr, "chaos: winding down\n");
    if (blocker) {
        sqlite3_exec(blocker, "ROLLBACK", nullptr, nullptr, nullptr);
        sqlite3_close(blocker);
    }
    for (auto& [name, when] : restart_at) daemon(name).start();
    std::this_thread::sleep_for(3s);
    for (auto& c : clients) pump(c);
    ingest.process.signal(SIGTERM);
    const auto ingest_exit = ingest.process.wait_exit(60s);
    ingest.up = false;
    const auto settle = Clock::now() + 3s;
    while (Clock::now() < settle) {
        for (auto& c : clients) pump(c);
        std::this_thread::sleep_for(100ms);
    }
    for (auto& f : fanouts) f.check();
    for (int fd : stalled)
        if (fd >= 0) ::close(fd);

    // The tally.
    std::unordered_set<std::uint64_t> stored;
    {
        sqlite3* reader = nullptr;
        sqlite3_open_v2(db.c_str(), &reader, SQLITE_OPEN_READONLY, nullptr);
        sqlite3_stmt* s = nullptr;
        sqlite3_prepare_v2(reader, "SELECT id FROM tweets", -1, &s, nullptr);
        while (sqlite3_step(s) == SQLITE_ROW) stored.insert(static_cast<std::uint64_t>(sqlite3_column_int64(s, 0)));
        sqlite3_finalize(s);
        sqlite3_close(reader);
    }
    SqliteStore store({db, true});
    std::map<std::string, std::vector<std::uint64_t>> matching;  // query -> stored matches, ascending
    for (const auto& q : queries) {
        const ParsedQuery parsed = *parse_query(q).query;
        PageRequest page;
        page.order = PageRequest::Order::oldest_first;
        page.size = 1000;
        page.max_candidates = 1000000;
        std::vector<std::uint64_t>& ids = matching[q];
        while (true) {
            StoreStatus status;
            const HistoryPage got = store.history(parsed, page, status);
            for (const auto& t : got.tweets) ids.push_back(tweet_id(json::parse(t)));
            if (!status.ok() || got.next == 0) break;
            page.after = got.next;
        }
    }
    std::size_t received = 0, not_stored = 0, duplicates = 0, missing = 0, expected = 0, clients_missing = 0,
                reconnects = 0, never_received = 0, errors = 0, gaps = 0;
    for (const auto& c : clients) {
        received += c.received.size();
        duplicates += c.duplicates;
        reconnects += c.reconnects;
        gaps += c.gaps;
        errors += c.errors;
        for (auto id : c.received) not_stored += !stored.count(id);
        if (c.first == 0) {
            ++never_received;
            continue;
        }
        std::size_t client_missing = 0;
        for (auto id : matching[c.query]) {
            if (id < c.first) continue;
            ++expected;
            client_missing += !c.received.count(id);
        }
        missing += client_missing;
        clients_missing += client_missing > 0;
    }
    int unplanned = ingest.unplanned_exits + redis.unplanned_exits;
    for (const auto& f : fanouts) unplanned += f.unplanned_exits;
    bool rss_ok = ingest.peak_rss_kib < ingest.rss_bound_kib && redis.peak_rss_kib < redis.rss_bound_kib;
    for (const auto& f : fanouts) rss_ok = rss_ok && f.peak_rss_kib < f.rss_bound_kib;
    const bool drained = ingest_exit && *ingest_exit == 0;

    std::printf("## Chaos tally\n\n");
    std::printf("`birdwatch-bench-chaos --seconds %d --clients %d --queries %d --rate %d`: %zu events "
                "(Redis killed twice, each fanout once, the ingest three times, the store blocked %lld s), "
                "%zu stalled and %zu hostile connections.\n\n",
                o.seconds, o.clients, o.queries, o.rate, events.size(), static_cast<long long>(block_for.count()),
                stalled.size(), hostile_sent);
    std::printf("| promise | measured | kept |\n|---|---|---|\n");
    std::printf("| no unplanned exit | %d | %s |\n", unplanned, unplanned == 0 ? "yes" : "NO");
    std::printf("| store books balance in every scrape | %zu of %zu unbalanced%s | %s |\n", unbalanced_scrapes, scrapes,
                first_unbalanced.empty() ? "" : (" (first: " + first_unbalanced + ")").c_str(),
                unbalanced_scrapes == 0 ? "yes" : "NO");
    std::printf("| SIGTERM drains the ingest | exit %d | %s |\n", ingest_exit ? *ingest_exit : -1, drained ? "yes" : "NO");
    std::printf("| every tweet a client received is in the store | %zu of %zu missing from the store | %s |\n",
                not_stored, received, not_stored == 0 ? "yes" : "NO");
    std::printf("| no client received a tweet twice | %zu duplicates | %s |\n", duplicates, duplicates == 0 ? "yes" : "NO");
    std::printf("| peak RSS under 256 MiB each | redis %ld, ingest %ld, fanouts %ld / %ld / %ld KiB | %s |\n",
                redis.peak_rss_kib, ingest.peak_rss_kib,
                fanouts[0].peak_rss_kib, fanouts[1].peak_rss_kib, fanouts[2].peak_rss_kib, rss_ok ? "yes" : "NO");
    std::printf("| every client holds every stored match since its first tweet | %zu of %zu missing, at %zu of %d "
                "clients | %s |\n",
                missing, expected, clients_missing, o.clients, missing == 0 ? "yes" : "NO");
    std::printf("\n%zu tweets stored; %zu deliveries; %zu reconnects; %zu gap notices; %zu clients saw no tweet (their "
                "word never came up after they subscribed); %zu error replies.\n",
                stored.size(), received, reconnects, gaps, never_received, errors);
    const bool kept = unplanned == 0 && unbalanced_scrapes == 0 && drained && not_stored == 0 && duplicates == 0 &&
                      rss_ok && missing == 0;
    return kept ? 0 : 1;
}
