#pragma once
// The live-search query registry in Redis: the contract between fanouts (which
// hold leases on the queries their clients use) and the ingest (which percolates
// every live query). Keys and messages are documented in docs/protocol.md.
//
// Every change is announced on one channel, in the order Redis executed it: the
// lease script announces a query that was absent and a replica that newly holds a
// query, the release script a replica that let go, the sweep script what lapsed.
// The ingest applies them in that order. Every key carries the hash tag {birdwatch},
// so on a Redis Cluster they share one slot and the scripts run there.

#include "common/config.h"
#include "common/redis_connection.h"

#include <nlohmann/json.hpp>

#include <cctype>
#include <string>

namespace birdwatch::registry {

struct Keys {
    std::string queries = "{birdwatch}:queries";       // HASH qid -> canonical query text
    std::string leases = "{birdwatch}:leases";         // ZSET qid -> lease expiry (Redis TIME, ms)
    std::string events = "{birdwatch}:query-events";   // channel: {"v":1,"op":...}
    std::string holders = "{birdwatch}:holders";       // ZSET "qid replica" -> that replica's lease expiry
};

// A daemon's "registry" config section: its key names (defaults from Keys).
inline nlohmann::json config_defaults() {
    const Keys keys;
    return {{"queries_key", keys.queries}, {"leases_key", keys.leases}, {"events_channel", keys.events},
            {"holders_key", keys.holders}};
}
inline Keys keys_from(const nlohmann::json& section) {
    return {section["queries_key"], section["leases_key"], section["events_channel"], section["holders_key"]};
}

// The scripts touch every key, so on a cluster they must share a slot (a hash tag).
inline void check_registry_slot(const RedisEndpoint& redis, const Keys& keys) {
    if (!redis.cluster) return;
    const auto slot = cluster::key_slot(keys.queries);
    for (const std::string* key : {&keys.leases, &keys.events, &keys.holders})
        if (cluster::key_slot(*key) != slot)
            throw ConfigError("on a Redis Cluster the registry keys must share a hash slot: give them one hash tag, "
                              "as the defaults' {birdwatch}; '" + *key + "' and '" + keys.queries + "' differ");
}

// KEYS: leases, queries, events, holders. ARGV: qid, canonical text, ttl ms, replica.
// Extends the query's lease (never shortens another replica's) and this replica's
// hold on it, stores the text, announces the query if it was not live and the hold if
// it is new. Returns 1 when it announced the query, 0 when it renewed, and -1
// (changing nothing) when the id already names a different text: a stored query is
// never replaced by another one.
inline constexpr const char* lease_script = R"lua(
local stored = redis.call('HGET', KEYS[2], ARGV[1])
if stored and stored ~= ARGV[2] then return -1 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expiry = now + tonumber(ARGV[3])
local existed = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], 'GT', expiry, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local announced = 0
if not existed then
  redis.call('PUBLISH', KEYS[3], cjson.encode({v = 1, op = 'add', qid = ARGV[1], query = ARGV[2]}))
  announced = 1
end
if redis.call('ZADD', KEYS[4], expiry, ARGV[1] .. ' ' .. ARGV[4]) == 1 then
  redis.call('PUBLISH', KEYS[3], cjson.encode({v = 1, op = 'hold', qid = ARGV[1], replica = ARGV[4]}))
end
return announced
)lua";

// KEYS: holders, events. ARGV: qid, replica. The replica's last client left the query:
// its hold ends now (the query's own lease lapses in its time, if no one renews it).
inline constexpr const char* release_script = R"lua(
if redis.call('ZREM', KEYS[1], ARGV[1] .. ' ' .. ARGV[2]) == 1 then
  redis.call('PUBLISH', KEYS[2], cjson.encode({v = 1, op = 'drop', qid = ARGV[1], replica = ARGV[2]}))
end
return 0
)lua";

// KEYS: leases, queries, events, holders. Removes up to 1000 queries whose leases
// lapsed and up to 1000 lapsed holds, announcing each. Returns {queries removed, holds removed}.
inline constexpr const char* sweep_script = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1000)
for _, qid in ipairs(expired) do
  redis.call('ZREM', KEYS[1], qid)
  redis.call('HDEL', KEYS[2], qid)
  redis.call('PUBLISH', KEYS[3], cjson.encode({v = 1, op = 'remove', qid = qid}))
end
local holds = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 1000)
for _, hold in ipairs(holds) do
  redis.call('ZREM', KEYS[4], hold)
  local space = string.find(hold, ' ', 1, true)
  if space then
    redis.call('PUBLISH', KEYS[3], cjson.encode({v = 1, op = 'drop', qid = string.sub(hold, 1, space - 1),
                                                 replica = string.sub(hold, space + 1)}))
  end
end
return {#expired, #holds}
)lua";

// A replica id as it may appear in a hold and in a channel name: 1-100 characters of
// letters, digits and . _ : -
inline bool valid_replica_id(const std::string& id) {
    if (id.empty() || id.size() > 100) return false;
    for (const char c : id)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' || c == '-')) return false;
    return true;
}

}  // namespace birdwatch::registry
