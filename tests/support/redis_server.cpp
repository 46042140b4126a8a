#include "tests/support/redis_server.h"

#include <hiredis/hiredis.h>

#include <catch2/catch.hpp>

namespace birdwatch::test {

using namespace std::chrono_literals;

RedisServer::RedisServer(const TempDir& dir) : binary_(find_program("redis-server")), dir_(dir.path()), port_(free_port()) {
    if (binary_.empty())
        FAIL("redis-server is not installed (apt-get install redis-server, or run scripts/test which installs it)");
    start();
}

void RedisServer::start() {
    process_ = ChildProcess({binary_, "--port", std::to_string(port_), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", dir_, "--daemonize", "no"},
                            dir_ + "/redis.log");
    const bool up = wait_until([&] { return command({"PING"}) == "PONG"; }, 10s);
    if (!up) FAIL("redis-server did not answer PING on port " << port_ << ":\n" << process_.log_tail());
}

void RedisServer::kill() { process_.kill(); }

std::string RedisServer::command(const std::vector<std::string>& args) const { return redis_command(port_, args); }

std::string redis_command(unsigned short port, const std::vector<std::string>& args) {
    timeval tv{1, 0};
    redisContext* ctx = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!ctx || ctx->err) {
        if (ctx) redisFree(ctx);
        return {};
    }
    redisSetTimeout(ctx, tv);
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
        argv.push_back(a.c_str());
        lens.push_back(a.size());
    }
    auto* reply = static_cast<redisReply*>(redisCommandArgv(ctx, static_cast<int>(argv.size()), argv.data(), lens.data()));
    std::string out;
    if (reply) {
        if (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS) out.assign(reply->str, reply->len);
        if (reply->type == REDIS_REPLY_INTEGER) out = std::to_string(reply->integer);
        for (std::size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements; ++i) {
            const redisReply* e = reply->element[i];
            if (i) out.push_back(' ');
            out += e->type == REDIS_REPLY_INTEGER ? std::to_string(e->integer) : std::string(e->str ? e->str : "", e->len);
        }
        freeReplyObject(reply);
    }
    redisFree(ctx);
    return out;
}

}  // namespace birdwatch::test
