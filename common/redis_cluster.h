#pragma once
// Redis Cluster's addressing, as the cluster specification defines it: which of the
// 16384 hash slots a key (or a sharded channel) lives in, the slot map a node reports
// (CLUSTER SLOTS), and the MOVED/ASK redirections a node answers with. Pure functions:
// the client that uses them is RedisClient.

#include <hiredis/hiredis.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace birdwatch::cluster {

inline constexpr std::uint16_t slot_count = 16384;

// CRC16-CCITT (XModem): polynomial 0x1021, initial value 0.
std::uint16_t crc16(std::string_view bytes);
// The key's slot: of the text between the first '{' and the next '}' when that is not
// empty (a hash tag, so related keys share a slot), else of the whole key.
std::uint16_t key_slot(std::string_view key);

struct NodeAddress {
    std::string host;
    int port = 0;
    bool operator==(const NodeAddress&) const = default;
};
// "host:port" (the last ':' separates, so IPv6 hosts work); nullopt when unreadable.
std::optional<NodeAddress> parse_address(std::string_view text);

// "MOVED 3999 127.0.0.1:6381": the slot lives there now (refresh the map).
// "ASK 3999 127.0.0.1:6381": the slot is migrating; ask there once, after ASKING.
struct Redirect {
    bool ask = false;
    std::uint16_t slot = 0;
    NodeAddress to;
};
std::optional<Redirect> parse_redirect(std::string_view error);

struct SlotRange {
    std::uint16_t first = 0, last = 0;
    NodeAddress master;
};
// The reply to CLUSTER SLOTS; empty when it is not one.
std::vector<SlotRange> parse_slots(const redisReply* reply);

// Which master serves each slot, as one node last reported it.
class SlotMap {
public:
    void assign(std::vector<SlotRange> ranges);
    bool empty() const { return ranges_.empty(); }
    void clear() { ranges_.clear(); }
    const NodeAddress* master_of(std::uint16_t slot) const;
    // Every master named in the map, once.
    std::vector<NodeAddress> masters() const;

private:
    std::vector<SlotRange> ranges_;  // sorted by first slot
};

}  // namespace birdwatch::cluster
