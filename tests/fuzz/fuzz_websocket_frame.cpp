// The RFC 6455 frame reader on the fanout's client side, under any chunking: never a
// crash, every message within the limit, the same events whether the bytes come in one
// piece or cut anywhere, and nothing after a violation. The first byte's top bit turns
// permessage-deflate on (compressed messages inflate within the limit too).

#include "fanout/websocket_codec.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

using namespace birdwatch::websocket;

namespace {
constexpr std::size_t max_message = 256;

std::vector<std::string> read(std::string_view bytes, std::uint8_t seed, bool compressed) {
    ClientFrameReader reader(max_message);
    if (compressed) reader.accept_compressed();
    std::vector<std::string> events;
    bool violated = false;
    std::size_t at = 0, step = seed;
    auto drain = [&] {
        while (auto event = reader.next()) {
            if (violated) std::abort();
            if (event->kind == ClientEvent::Kind::violation) violated = true;
            if ((event->kind == ClientEvent::Kind::text || event->kind == ClientEvent::Kind::binary) &&
                event->payload.size() > max_message)
                std::abort();
            events.push_back(std::to_string(static_cast<int>(event->kind)) + ":" + std::to_string(event->code) + ":" +
                             event->payload);
        }
    };
    while (at < bytes.size()) {
        const std::size_t n = seed == 0 ? bytes.size() : 1 + step % 17;
        reader.append(bytes.data() + at, std::min(n, bytes.size() - at));
        at += n;
        step = step * 31 + 7;
        drain();
    }
    return events;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
    const bool compressed = data[0] & 0x80;
    if (read(bytes, 0, compressed) != read(bytes, static_cast<std::uint8_t>((data[0] & 0x7f) | 1), compressed))
        std::abort();
    return 0;
}
