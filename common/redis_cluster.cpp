#include "common/redis_cluster.h"

#include <algorithm>
#include <charconv>

namespace birdwatch::cluster {

std::uint16_t crc16(std::string_view bytes) {
    std::uint16_t crc = 0;
    for (const unsigned char byte : bytes) {
        crc ^= static_cast<std::uint16_t>(byte << 8);
        for (int bit = 0; bit < 8; ++bit)
            crc = static_cast<std::uint16_t>(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

std::uint16_t key_slot(std::string_view key) {
    if (const auto open = key.find('{'); open != std::string_view::npos) {
        const auto close = key.find('}', open + 1);
        if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
    }
    return crc16(key) & (slot_count - 1);
}

namespace {

template <typename Number>
std::optional<Number> number(std::string_view text) {
    Number value{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return value;
}

std::optional<std::string_view> text_of(const redisReply* r) {
    if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS) || !r->str) return std::nullopt;
    return std::string_view(r->str, r->len);
}

}  // namespace

std::optional<NodeAddress> parse_address(std::string_view text) {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    std::string_view port_text = text.substr(colon + 1);
    if (const auto at = port_text.find('@'); at != std::string_view::npos) port_text = port_text.substr(0, at);  // cluster bus port
    const auto port = number<int>(port_text);
    if (!port || *port <= 0 || *port > 65535) return std::nullopt;
    return NodeAddress{std::string(text.substr(0, colon)), *port};
}

std::optional<Redirect> parse_redirect(std::string_view error) {
    Redirect redirect;
    if (error.starts_with("MOVED ")) error.remove_prefix(6);
    else if (error.starts_with("ASK ")) {
        error.remove_prefix(4);
        redirect.ask = true;
    } else
        return std::nullopt;
    const auto space = error.find(' ');
    if (space == std::string_view::npos) return std::nullopt;
    const auto slot = number<unsigned>(error.substr(0, space));
    const auto to = parse_address(error.substr(space + 1));
    if (!slot || *slot >= slot_count || !to) return std::nullopt;
    redirect.slot = static_cast<std::uint16_t>(*slot);
    redirect.to = *to;
    return redirect;
}

// Each element: [first, last, [host, port, id, ...] (the master), replicas...].
std::vector<SlotRange> parse_slots(const redisReply* reply) {
    std::vector<SlotRange> ranges;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) return ranges;
    for (std::size_t i = 0; i < reply->elements; ++i) {
        const redisReply* range = reply->element[i];
        if (range->type != REDIS_REPLY_ARRAY || range->elements < 3) return {};
        const redisReply* first = range->element[0];
        const redisReply* last = range->element[1];
        const redisReply* master = range->element[2];
        if (first->type != REDIS_REPLY_INTEGER || last->type != REDIS_REPLY_INTEGER || master->type != REDIS_REPLY_ARRAY ||
            master->elements < 2 || master->element[1]->type != REDIS_REPLY_INTEGER)
            return {};
        const auto host = text_of(master->element[0]);
        if (!host || first->integer < 0 || last->integer < first->integer || last->integer >= slot_count ||
            master->element[1]->integer <= 0 || master->element[1]->integer > 65535)
            return {};
        ranges.push_back({static_cast<std::uint16_t>(first->integer), static_cast<std::uint16_t>(last->integer),
                          {std::string(*host), static_cast<int>(master->element[1]->integer)}});
    }
    return ranges;
}

void SlotMap::assign(std::vector<SlotRange> ranges) {
    std::sort(ranges.begin(), ranges.end(), [](const SlotRange& a, const SlotRange& b) { return a.first < b.first; });
    ranges_ = std::move(ranges);
}

const NodeAddress* SlotMap::master_of(std::uint16_t slot) const {
    auto it = std::upper_bound(ranges_.begin(), ranges_.end(), slot,
                               [](std::uint16_t s, const SlotRange& r) { return s < r.first; });
    if (it == ranges_.begin()) return nullptr;
    --it;
    return slot <= it->last ? &it->master : nullptr;
}

std::vector<NodeAddress> SlotMap::masters() const {
    std::vector<NodeAddress> all;
    for (const auto& range : ranges_)
        if (std::find(all.begin(), all.end(), range.master) == all.end()) all.push_back(range.master);
    return all;
}

}  // namespace birdwatch::cluster
