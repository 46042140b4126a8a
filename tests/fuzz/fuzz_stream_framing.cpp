// Stream framing (newline and delimited=length) under any chunking: the same bytes
// cut anywhere give the same messages, keep-alives and skips as in one piece.
// Input: [mode byte][chunking seed byte][stream bytes...]

#include "ingest/stream/framer.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

using namespace birdwatch;

namespace {
std::vector<std::string> frame(Framer::Mode mode, std::string_view bytes, std::uint8_t seed) {
    std::vector<std::string> events;
    Framer framer(mode, 64, {[&](std::string_view m) { events.push_back("m:" + std::string(m)); },
                             [&] { events.emplace_back("k"); },
                             [&](std::size_t n) { events.push_back("o:" + std::to_string(n > 0)); },
                             [&](std::string_view why) { events.push_back("x:" + std::string(why)); }});
    std::size_t at = 0, step = seed;
    while (at < bytes.size()) {
        const std::size_t n = seed == 0 ? bytes.size() : 1 + step % 13;
        framer.feed(bytes.substr(at, n));
        at += n;
        step = step * 31 + 7;
    }
    if (framer.buffered() > 64 + 24) std::abort();  // a partial message is bounded by the limit
    return events;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const auto mode = data[0] & 1 ? Framer::Mode::delimited : Framer::Mode::newline;
    const std::string_view bytes(reinterpret_cast<const char*>(data + 2), size - 2);
    const auto whole = frame(mode, bytes, 0);
    const auto chunked = frame(mode, bytes, static_cast<std::uint8_t>(data[1] | 1));
    // Oversized reports may be split differently (how many bytes were seen when), but
    // messages, keep-alives and malformed lines must agree exactly.
    auto without_oversized = [](std::vector<std::string> v) {
        std::erase_if(v, [](const std::string& e) { return e.rfind("o:", 0) == 0; });
        return v;
    };
    if (without_oversized(whole) != without_oversized(chunked)) std::abort();
    return 0;
}
