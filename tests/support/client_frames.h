#pragma once
// A WebSocket frame as a client sends it (RFC 6455 5.2): `first` is the first byte
// (FIN, RSV bits, opcode), the payload masked with `mask` unless `masked` is false.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace birdwatch::test {

inline std::string client_frame(std::uint8_t first, std::string_view payload, bool masked = true,
                                std::array<char, 4> mask = {'\x12', '\x34', '\x56', '\x78'}) {
    std::string out(1, static_cast<char>(first));
    const char mask_bit = masked ? '\x80' : '\0';
    const std::uint64_t n = payload.size();
    if (n < 126) {
        out.push_back(static_cast<char>(mask_bit | static_cast<char>(n)));
    } else if (n < 65536) {
        out.push_back(static_cast<char>(mask_bit | 126));
        out.push_back(static_cast<char>(n >> 8));
        out.push_back(static_cast<char>(n & 0xFF));
    } else {
        out.push_back(static_cast<char>(mask_bit | 127));
        for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
    }
    if (masked) out.append(mask.data(), mask.size());
    for (std::size_t i = 0; i < n; ++i) out.push_back(masked ? static_cast<char>(payload[i] ^ mask[i % 4]) : payload[i]);
    return out;
}

}  // namespace birdwatch::test
