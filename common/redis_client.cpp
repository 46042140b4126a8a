#include "common/redis_client.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

namespace birdwatch {

namespace {

constexpr int max_redirections = 5;

std::string name_of(const RedisEndpoint& node) { return fmt::format("{}:{}", node.host, node.port); }

std::optional<cluster::Redirect> redirect_in(const RedisReplyPtr& reply) {
    if (!reply || reply->type != REDIS_REPLY_ERROR || !reply->str) return std::nullopt;
    return cluster::parse_redirect({reply->str, reply->len});
}

}  // namespace

bool RedisClient::connected() const {
    for (const auto& [name, connection] : connections_)
        if (connection.connected()) return true;
    return false;
}

void RedisClient::reset() {
    slots_.clear();
    connections_.clear();
}

void RedisClient::lost(const RedisEndpoint& node) {
    connections_.erase(name_of(node));
    slots_.clear();  // a node that fails may have failed over: learn who serves what again
}

RedisConnection* RedisClient::connection_to(const RedisEndpoint& node, std::string& error) {
    RedisConnection& connection = connections_[name_of(node)];
    if (connection.connected()) return &connection;
    if (std::string failed = connection.connect(node, true); !failed.empty()) {
        error = fmt::format("{}: {}", name_of(node), failed);
        lost(node);
        return nullptr;
    }
    return &connection;
}

// Asks the seeds, then the masters known before, until one answers CLUSTER SLOTS.
bool RedisClient::learn_slots(std::string& error) {
    std::vector<cluster::NodeAddress> candidates = endpoint_.seeds;
    for (const auto& master : slots_.masters())
        if (std::find(candidates.begin(), candidates.end(), master) == candidates.end()) candidates.push_back(master);
    for (const auto& candidate : candidates) {
        const RedisEndpoint node = endpoint_.at(candidate);
        RedisConnection* connection = connection_to(node, error);
        if (!connection) continue;
        connection->append(std::array<std::string_view, 2>{"CLUSTER", "SLOTS"});
        const RedisReplyPtr reply = connection->read(error);
        if (!reply) {
            lost(node);
            continue;
        }
        std::vector<cluster::SlotRange> ranges = cluster::parse_slots(reply.get());
        if (ranges.empty()) {
            error = fmt::format("{}: no slot map in the reply to CLUSTER SLOTS", name_of(node));
            continue;
        }
        for (auto& range : ranges)  // an unknown host means the node we asked
            if (range.master.host.empty() || range.master.host == "?") range.master.host = candidate.host;
        slots_.assign(std::move(ranges));
        return true;
    }
    if (error.empty()) error = "no cluster node answered";
    return false;
}

std::optional<RedisEndpoint> RedisClient::node_for(std::string_view key, std::string& error) {
    if (!endpoint_.cluster) return endpoint_;
    if (slots_.empty() && !learn_slots(error)) return std::nullopt;
    const auto* master = slots_.master_of(cluster::key_slot(key));
    if (!master) {
        error = fmt::format("no master serves slot {} (the cluster is not ready)", cluster::key_slot(key));
        slots_.clear();
        return std::nullopt;
    }
    return endpoint_.at(*master);
}

// The one place redirections are followed. Each command goes to the master serving its
// key's slot (to the server, when single), pipelined per node in the callers' order; MOVED
// makes the map be learnt again and the command be sent anew, ASK sends it once to the
// importing node after ASKING. Every other reply goes to done(i, reply); a command whose
// node cannot be reached gets none, and `error` says why.
template <typename KeyOf, typename Append, typename Done>
void RedisClient::dispatch(std::size_t count, KeyOf key_of, Append append, Done done, std::string& error) {
    const cluster::NodeAddress server{endpoint_.host, endpoint_.port};
    struct Group {
        cluster::NodeAddress node;
        std::vector<std::size_t> items;
    };
    std::vector<std::size_t> todo(count);
    for (std::size_t i = 0; i < count; ++i) todo[i] = i;
    std::map<std::size_t, cluster::NodeAddress> asks;  // command -> node to ask once
    for (int round = 0; round <= max_redirections && !todo.empty(); ++round) {
        if (endpoint_.cluster && slots_.empty() && !learn_slots(error)) return;
        std::vector<Group> groups;
        for (const std::size_t i : todo) {
            const cluster::NodeAddress* node = &server;
            if (const auto ask = asks.find(i); ask != asks.end()) node = &ask->second;
            else if (endpoint_.cluster) node = slots_.master_of(cluster::key_slot(key_of(i)));
            if (!node) {
                error = fmt::format("no master serves slot {} (the cluster is not ready)", cluster::key_slot(key_of(i)));
                continue;
            }
            auto group = std::find_if(groups.begin(), groups.end(), [&](const Group& g) { return g.node == *node; });
            if (group == groups.end()) group = groups.insert(groups.end(), Group{*node, {}});
            group->items.push_back(i);
        }
        std::vector<std::size_t> again;
        for (Group& group : groups) {
            const RedisEndpoint node = endpoint_.at(group.node);
            RedisConnection* connection = connection_to(node, error);
            if (!connection) continue;
            for (const std::size_t i : group.items) {
                if (asks.count(i)) connection->append(std::array<std::string_view, 1>{"ASKING"});
                append(*connection, i);
            }
            for (const std::size_t i : group.items) {
                const bool asked = asks.erase(i) > 0;
                RedisReplyPtr reply = connection->read(error);
                if (reply && asked) reply = connection->read(error);  // the first was ASKING's +OK
                if (!reply) {
                    lost(node);
                    break;
                }
                if (const auto redirect = endpoint_.cluster ? redirect_in(reply) : std::nullopt) {
                    if (redirect->ask) asks[i] = redirect->to;
                    else slots_.clear();
                    again.push_back(i);
                } else {
                    done(i, std::move(reply));
                }
            }
        }
        std::sort(again.begin(), again.end());  // the callers' order again
        todo = std::move(again);
    }
    if (!todo.empty()) error = "too many redirections";
}

std::vector<RedisReplyPtr> RedisClient::run(std::string_view key,
                                            std::span<const std::vector<std::string_view>> commands,
                                            std::string& error) {
    std::vector<RedisReplyPtr> replies(commands.size());
    dispatch(
        commands.size(), [&](std::size_t) { return key; },
        [&](RedisConnection& connection, std::size_t i) { connection.append(commands[i]); },
        [&](std::size_t i, RedisReplyPtr reply) { replies[i] = std::move(reply); }, error);
    return replies;
}

RedisReplyPtr RedisClient::run(std::string_view key, std::vector<std::string_view> command, std::string& error) {
    const std::vector<std::vector<std::string_view>> commands{std::move(command)};
    return std::move(run(key, commands, error)[0]);
}

// On the ingest's hot path: no copy of a payload, one append per publication.
std::size_t RedisClient::publish(std::span<const Publication> publications, std::string& error) {
    const std::string_view verb = endpoint_.cluster ? "SPUBLISH" : "PUBLISH";
    std::size_t acknowledged = 0;
    dispatch(
        publications.size(), [&](std::size_t i) { return std::string_view(*publications[i].channel); },
        [&](RedisConnection& connection, std::size_t i) {
            connection.append(std::array<std::string_view, 3>{verb, *publications[i].channel, publications[i].payload});
        },
        [&](std::size_t, RedisReplyPtr reply) {
            if (reply->type == REDIS_REPLY_ERROR) error.assign(reply->str, reply->len);
            else ++acknowledged;
        },
        error);
    return acknowledged;
}

}  // namespace birdwatch
