// birdwatch-bench-publish: PUBLISH `matches` payloads at a target rate, as the
// ingest would: {"v":1,"type":"tweet","qids":[id of --query],"ingest_us":<now>,
// "tweet":{"id":"<n>","text":"xxx…"}} padded to exactly --size bytes, or with
// --tweets N real tweets as the ingest publishes them (../shared/data/tweets when
// present, else the synthetic corpus; size= is then their mean). Pipelined, paced
// every 0.5 ms. Prints one line:
//   publish rate=<target> sent=<n> seconds=<s> achieved=<n/s> size=<bytes>

#include "common/clock.h"
#include "common/protocol.h"
#include "common/query/query.h"
#include "bench/workload.h"

#include <hiredis/hiredis.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

using namespace birdwatch;

int main(int argc, char** argv) {
    std::string host = "127.0.0.1", channel = "matches", query = "bench";
    int port = 6379;
    double rate = 1000, seconds = 3;
    std::size_t size = 512, real_tweets = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i], value = argv[i + 1];
        if (flag == "--redis-host") host = value;
        else if (flag == "--redis-port") port = std::stoi(value);
        else if (flag == "--channel") channel = value;
        else if (flag == "--query") query = value;
        else if (flag == "--rate") rate = std::stod(value);
        else if (flag == "--seconds") seconds = std::stod(value);
        else if (flag == "--size") size = std::stoul(value);
        else if (flag == "--tweets") real_tweets = std::stoul(value);
        else {
            std::cerr << "usage: birdwatch-bench-publish [--redis-host H] [--redis-port P] [--channel C] [--query Q]\n"
                         "       [--rate payloads/s] [--seconds S] [--size bytes | --tweets N]\n";
            return 2;
        }
    }
    const QueryParse parsed = parse_query(query);
    if (!parsed.query) {
        std::cerr << "bad --query: " << parsed.error.message << "\n";
        return 2;
    }
    std::unique_ptr<redisContext, decltype(&redisFree)> redis(redisConnect(host.c_str(), port), redisFree);
    if (!redis || redis->err) {
        std::cerr << "cannot connect to redis " << host << ":" << port << "\n";
        return 1;
    }

    const std::string head = R"({"v":1,"type":"tweet","qids":[")" + parsed.query->id + R"("],"ingest_us":)";
    std::string payload;
    std::uint64_t sent = 0, payload_bytes = 0;
    std::vector<std::string> tweet_json;
    if (real_tweets) {
        std::string source;
        for (const Tweet& tweet : workload::load_tweets(BIRDWATCH_SHARED_DATA_DIR, real_tweets, source)) {
            tweet_json.emplace_back();
            append_tweet_json(tweet_json.back(), tweet);
        }
    }
    const std::vector<std::string> qids{parsed.query->id};
    auto build = [&](std::uint64_t id) {
        if (!tweet_json.empty()) {
            // the tweet's own id stays: a client merges by id, the load generator does not look
            payload.clear();
            protocol::append_tweet_payload(payload, tweet_json[id % tweet_json.size()], qids, now_epoch_us());
            payload_bytes += payload.size();
            return;
        }
        payload = head + std::to_string(now_epoch_us()) + R"(,"tweet":{"id":")" + std::to_string(id) + R"(","text":")";
        const std::size_t tail = 3;  // "}}
        payload.append(payload.size() + tail < size ? size - payload.size() - tail : 0, 'x');
        payload += "\"}}";
        payload_bytes += payload.size();
    };
    const auto start = std::chrono::steady_clock::now();
    const auto end = start + std::chrono::duration<double>(seconds);
    while (true) {
        const auto now = std::chrono::steady_clock::now();
        if (now >= end) break;
        const auto due = static_cast<std::uint64_t>(std::chrono::duration<double>(now - start).count() * rate);
        const std::uint64_t batch = due - sent;
        for (std::uint64_t i = 0; i < batch; ++i) {
            build(1'000'000'000'000ULL + sent + i);
            redisAppendCommand(redis.get(), "PUBLISH %b %b", channel.data(), channel.size(), payload.data(),
                               payload.size());
        }
        for (std::uint64_t i = 0; i < batch; ++i) {
            void* reply = nullptr;
            if (redisGetReply(redis.get(), &reply) != REDIS_OK) {
                std::cerr << "redis: " << redis->errstr << "\n";
                return 1;
            }
            freeReplyObject(reply);
        }
        sent += batch;
        std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("publish rate=%.0f sent=%llu seconds=%.2f achieved=%.0f size=%zu\n", rate,
                static_cast<unsigned long long>(sent), took, static_cast<double>(sent) / took,
                sent ? static_cast<std::size_t>(payload_bytes / sent) : payload.size());
    return 0;
}
