// Several hosts on one machine: network namespaces made by the test (root only),
// joined by a bridge in a namespace of their own, so the machine's own network is not
// touched. Redis and the ingest on host 1, a fanout on hosts 2 and 3, clients on host 4.

#include "tests/support/daemons.h"
#include "tests/support/live_search.h"
#include "tests/support/skip.h"
#include "tests/support/ws_client.h"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace birdwatch;
using namespace birdwatch::test;
using namespace std::chrono_literals;

namespace {

int sh(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()); }

struct Lab {
    std::string prefix = "bw" + std::to_string(::getpid() % 100000);
    std::string subnet = "10.213." + std::to_string(::getpid() % 250) + ".";
    std::string net() const { return prefix + "n"; }
    std::string host(int i) const { return prefix + "h" + std::to_string(i); }
    std::string ip(int i) const { return subnet + std::to_string(i); }
    bool ok = true;

    Lab() {
        ok = sh("ip netns add " + net()) == 0 && sh("ip netns exec " + net() + " ip link add br0 type bridge") == 0 &&
             sh("ip netns exec " + net() + " ip link set br0 up") == 0;
        for (int i = 1; ok && i <= 4; ++i) {
            const std::string h = host(i), v = "v" + std::to_string(i), b = "b" + std::to_string(i);
            ok = sh("ip netns add " + h) == 0 &&
                 sh("ip netns exec " + net() + " ip link add " + v + " type veth peer name " + b) == 0 &&
                 sh("ip netns exec " + net() + " ip link set " + v + " netns " + h) == 0 &&
                 sh("ip netns exec " + net() + " ip link set " + b + " master br0 up") == 0 &&
                 sh("ip netns exec " + h + " ip addr add " + ip(i) + "/24 dev " + v) == 0 &&
                 sh("ip netns exec " + h + " ip link set " + v + " up") == 0 &&
                 sh("ip netns exec " + h + " ip link set lo up") == 0;
        }
    }
    ~Lab() {
        for (int i = 1; i <= 4; ++i) sh("ip netns del " + host(i));
        sh("ip netns del " + net());
    }
    std::vector<std::string> in(int i, std::vector<std::string> argv) const {
        argv.insert(argv.begin(), {find_program("ip"), "netns", "exec", host(i)});
        return argv;
    }
};

std::string self_path() {
    char path[4096];
    const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
    return std::string(path, n > 0 ? static_cast<std::size_t>(n) : 0);
}

}  // namespace

TEST_CASE("multi-host: Redis and ingest, two fanouts and the clients on four network-namespace hosts", "[deploy]") {
    if (::geteuid() != 0 || find_program("ip").empty()) SKIP_TEST("creating network namespaces needs root and iproute2");
    Lab lab;
    if (!lab.ok) SKIP_TEST("this machine does not allow creating network namespaces and a bridge");
    TempDir dir;
    ChildProcess redis(lab.in(1, {find_program("redis-server"), "--bind", lab.ip(1), "--port", "6379", "--protected-mode",
                                  "no", "--save", "", "--appendonly", "no", "--dir", dir.path()}),
                       dir.file("redis.log"));
    const std::vector<std::string> to_redis = {"--redis.host=" + lab.ip(1), "--redis.port=6379"};
    auto fanout = [&](int host) {
        std::vector<std::string> argv = {BIRDWATCH_FANOUT_BIN, "--http.address=" + lab.ip(host), "--http.port=8080",
                                         "--registry.lease_ttl_ms=2000", "--registry.refresh_ms=500"};
        argv.insert(argv.end(), to_redis.begin(), to_redis.end());
        return ChildProcess(lab.in(host, argv), dir.file("fanout-" + std::to_string(host) + ".log"));
    };
    ChildProcess fanout2 = fanout(2), fanout3 = fanout(3);
    std::vector<std::string> ingest_argv = {BIRDWATCH_INGEST_BIN, "--source.synthetic.rate=300", "--store.kind=none",
                                            "--http.port=-1", "--registry.sweep_ms=200"};
    ingest_argv.insert(ingest_argv.end(), to_redis.begin(), to_redis.end());
    ChildProcess ingest(lab.in(1, ingest_argv), dir.file("ingest.log"));

    // The clients run on host 4: this same test binary, its hidden client case.
    const std::string out = dir.file("clients.out");
    ChildProcess clients(lab.in(4, {self_path(), "[.netns-clients]"}), dir.file("clients.log"),
                         {"BW_FANOUTS=" + lab.ip(2) + "," + lab.ip(3), "BW_OUT=" + out});
    const auto status = clients.wait_exit(90s);
    std::ifstream result(out);
    std::stringstream text;
    text << result.rdbuf();
    INFO("clients:\n" << clients.log_tail() << "\nfanout 2:\n" << fanout2.log_tail(1500));
    CHECK(status == 0);
    CHECK(text.str().find("ok clients=20") != std::string::npos);
}

TEST_CASE("netns clients (run by the multi-host test on its client host)", "[.netns-clients]") {
    const char* fanouts = std::getenv("BW_FANOUTS");
    const char* out = std::getenv("BW_OUT");
    REQUIRE(fanouts);
    REQUIRE(out);
    std::vector<std::string> hosts;
    std::stringstream list(fanouts);
    for (std::string h; std::getline(list, h, ',');) hosts.push_back(h);
    const std::string query = "the OR hoy OR heute";
    WsIo io;
    std::vector<std::unique_ptr<WsClient>> clients;
    for (int i = 0; i < 20; ++i) {
        std::unique_ptr<WsClient> c;
        REQUIRE(wait_until([&] {  // a fresh client per attempt: the fanout may still be starting
            c = std::make_unique<WsClient>(io);
            c->set_host(hosts[static_cast<std::size_t>(i) % hosts.size()]);
            return c->connect(8080, "/ws", 2s);
        }, 30s));
        subscribe(*c, query);
        clients.push_back(std::move(c));
    }
    for (auto& c : clients) {
        REQUIRE(wait_until([&] { return tweet_payloads(*c).size() >= 20; }, 30s));
        for (const auto& p : tweet_payloads(*c)) REQUIRE(query_matches(query, tweet_from_payload(p)));
    }
    std::ofstream(out) << "ok clients=" << clients.size() << "\n";
}
