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
        const std::vector<std::vector<std::string_view>> command{{"CLUSTER", "SLOTS"}};
        auto replies = connection->pipeline(command, error);
        if (replies.empty()) {
            lost(node);
            continue;
        }
        std::vector<cluster::SlotRange> ranges = cluster::parse_slots(replies[0].get());
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

std::vector<RedisReplyPtr> RedisClient::run(std::string_view key,
                                            std::span<const std::vector<std::string_view>> commands,
                                            std::string& error) {
    std::vector<RedisReplyPtr> replies(commands.size());
    std::vector<std::size_t> todo(commands.size());
    for (std::size_t i = 0; i < todo.size(); ++i) todo[i] = i;
    std::optional<cluster::NodeAddress> ask;
    for (int round = 0; round <= max_redirections && !todo.empty(); ++round) {
        std::optional<RedisEndpoint> node = ask ? endpoint_.at(*ask) : node_for(key, error);
        if (!node) return replies;
        RedisConnection* connection = connection_to(*node, error);
        if (!connection) return replies;
        std::vector<std::vector<std::string_view>> batch;
        for (const std::size_t i : todo) {
            if (ask) batch.push_back({"ASKING"});
            batch.push_back(commands[i]);
        }
        auto answers = connection->pipeline(batch, error);
        if (answers.size() < batch.size()) {
            lost(*node);
            return replies;
        }
        std::vector<std::size_t> again;
        std::optional<cluster::NodeAddress> next_ask;
        for (std::size_t k = 0; k < todo.size(); ++k) {
            RedisReplyPtr& answer = answers[ask ? 2 * k + 1 : k];
            const auto redirect = endpoint_.cluster ? redirect_in(answer) : std::nullopt;
            if (!redirect) {
                replies[todo[k]] = std::move(answer);
                continue;
            }
            again.push_back(todo[k]);
            if (redirect->ask) next_ask = redirect->to;
            else slots_.clear();
        }
        todo = std::move(again);
        ask = next_ask;
    }
    if (!todo.empty()) error = "too many redirections";
    return replies;
}

RedisReplyPtr RedisClient::run(std::string_view key, std::vector<std::string_view> command, std::string& error) {
    const std::vector<std::vector<std::string_view>> commands{std::move(command)};
    return std::move(run(key, commands, error)[0]);
}

// Grouped by node, each group in the belt's order (a channel lives on one node). On the
// ingest's hot path: no copy of a payload, one append per publication.
std::size_t RedisClient::publish(std::span<const Publication> publications, std::string& error) {
    const std::string_view verb = endpoint_.cluster ? "SPUBLISH" : "PUBLISH";
    const cluster::NodeAddress server{endpoint_.host, endpoint_.port};
    struct Group {
        cluster::NodeAddress node;
        std::vector<std::size_t> items;
    };
    std::size_t acknowledged = 0;
    std::vector<std::size_t> todo(publications.size());
    for (std::size_t i = 0; i < todo.size(); ++i) todo[i] = i;
    std::map<std::size_t, cluster::NodeAddress> asks;  // publication -> node to ask once
    for (int round = 0; round <= max_redirections && !todo.empty(); ++round) {
        std::vector<Group> groups;
        if (endpoint_.cluster && slots_.empty() && !learn_slots(error)) return acknowledged;
        for (const std::size_t i : todo) {
            const cluster::NodeAddress* node = &server;
            if (const auto ask = asks.find(i); ask != asks.end()) node = &ask->second;
            else if (endpoint_.cluster) node = slots_.master_of(cluster::key_slot(*publications[i].channel));
            if (!node) {
                error = "no master serves the channel's slot (the cluster is not ready)";
                continue;  // dropped: no node serves it now
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
                connection->append(std::array<std::string_view, 3>{verb, *publications[i].channel,
                                                                   publications[i].payload});
            }
            for (const std::size_t i : group.items) {
                const bool asked = asks.erase(i) > 0;
                RedisReplyPtr answer = connection->read(error);
                if (answer && asked) answer = connection->read(error);  // the first was ASKING's +OK
                if (!answer) {
                    lost(node);
                    break;
                }
                if (const auto redirect = endpoint_.cluster ? redirect_in(answer) : std::nullopt) {
                    if (redirect->ask) asks[i] = redirect->to;
                    else slots_.clear();
                    again.push_back(i);
                } else if (answer->type == REDIS_REPLY_ERROR) {
                    error.assign(answer->str, answer->len);
                } else {
                    ++acknowledged;
                }
            }
        }
        std::sort(again.begin(), again.end());  // the belt's order again
        todo = std::move(again);
    }
    return acknowledged;
}

}  // namespace birdwatch
