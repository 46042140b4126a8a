#pragma once
// The live-search query registry in Redis: the contract between fanouts (which
// hold leases on the queries their clients use) and the ingest (which percolates
// every live query). Keys and messages are documented in docs/protocol.md.
//
// Every change is announced on one channel, in the order Redis executed it: the
// lease script announces a query that was absent, the sweep script announces the
// ones whose leases lapsed. The ingest applies them in that order.

#include <string>

namespace birdwatch::registry {

struct Keys {
    std::string queries = "birdwatch:queries";       // HASH qid -> canonical query text
    std::string leases = "birdwatch:leases";         // ZSET qid -> lease expiry (Redis TIME, ms)
    std::string events = "birdwatch:query-events";   // channel: {"v":1,"op":"add"|"remove",...}
};

// KEYS: leases, queries, events. ARGV: qid, canonical text, ttl ms.
// Extends the lease (never shortens another replica's), stores the text, and
// announces the query if it was not live. Returns 1 when it announced, 0 when it
// renewed, and -1 (changing nothing) when the id already names a different text:
// a stored query is never replaced by another one.
inline constexpr const char* lease_script = R"lua(
local stored = redis.call('HGET', KEYS[2], ARGV[1])
if stored and stored ~= ARGV[2] then return -1 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local existed = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], 'GT', now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if existed then return 0 end
redis.call('PUBLISH', KEYS[3], cjson.encode({v = 1, op = 'add', qid = ARGV[1], query = ARGV[2]}))
return 1
)lua";

// KEYS: leases, queries, events. Removes up to 1000 queries whose leases lapsed,
// announcing each removal. Returns how many it removed.
inline constexpr const char* sweep_script = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1000)
for _, qid in ipairs(expired) do
  redis.call('ZREM', KEYS[1], qid)
  redis.call('HDEL', KEYS[2], qid)
  redis.call('PUBLISH', KEYS[3], cjson.encode({v = 1, op = 'remove', qid = qid}))
end
return #expired
)lua";

}  // namespace birdwatch::registry
