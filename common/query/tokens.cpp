#include "common/query/tokens.h"

#include <cstring>
#include <random>

namespace birdwatch {

namespace {

// Decodes one code point at `i`, advancing it; malformed bytes decode as U+FFFD.
char32_t decode(std::string_view s, std::size_t& i) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    auto cont = [&](std::size_t k) {
        return i + k < s.size() && (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80
                   ? static_cast<char32_t>(static_cast<unsigned char>(s[i + k]) & 0x3F)
                   : char32_t(0xFFFFFFFF);
    };
    if (b0 < 0x80) { ++i; return b0; }
    if ((b0 & 0xE0) == 0xC0) {
        const char32_t c1 = cont(1);
        if (c1 != 0xFFFFFFFF && b0 >= 0xC2) { i += 2; return (char32_t(b0 & 0x1F) << 6) | c1; }
    } else if ((b0 & 0xF0) == 0xE0) {
        const char32_t c1 = cont(1), c2 = cont(2);
        if (c1 != 0xFFFFFFFF && c2 != 0xFFFFFFFF) {
            const char32_t cp = (char32_t(b0 & 0x0F) << 12) | (c1 << 6) | c2;
            if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) { i += 3; return cp; }
        }
    } else if ((b0 & 0xF8) == 0xF0) {
        const char32_t c1 = cont(1), c2 = cont(2), c3 = cont(3);
        if (c1 != 0xFFFFFFFF && c2 != 0xFFFFFFFF && c3 != 0xFFFFFFFF) {
            const char32_t cp = (char32_t(b0 & 0x07) << 18) | (c1 << 12) | (c2 << 6) | c3;
            if (cp >= 0x10000 && cp <= 0x10FFFF) { i += 4; return cp; }
        }
    }
    ++i;
    return 0xFFFD;
}

void encode(char32_t cp, std::string& out) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

// Letters, digits and marks belong to tokens; punctuation, symbols and separators split them.
bool is_word(char32_t c) {
    if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (c <= 0xBF) return false;                           // Latin-1 punctuation, symbols, NBSP
    if (c == 0xD7 || c == 0xF7) return false;              // × ÷
    if (c >= 0x2000 && c <= 0x2BFF) return false;          // general punctuation .. misc symbols and arrows
    if (c >= 0x2E00 && c <= 0x2E7F) return false;          // supplemental punctuation
    if (c >= 0x3000 && c <= 0x303F) return false;          // CJK symbols and punctuation
    if (c >= 0xFE00 && c <= 0xFE0F) return false;          // variation selectors
    if (c >= 0xFE30 && c <= 0xFE6F) return false;          // CJK compatibility forms, small forms
    if (c >= 0xFF00 && c <= 0xFF0F) return false;          // fullwidth punctuation
    if ((c >= 0xFF1A && c <= 0xFF20) || (c >= 0xFF3B && c <= 0xFF40) || (c >= 0xFF5B && c <= 0xFF65)) return false;
    if (c == 0xFFFD || c == 0xFEFF) return false;
    if (c >= 0x1F000 && c <= 0x1FAFF) return false;        // emoji, pictographs, symbols
    if (c >= 0xE0000 && c <= 0xE007F) return false;        // tag characters (flag sequences)
    return true;
}

char32_t fold(char32_t c) {
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c < 0xC0) return c;
    if (c <= 0xDE && c != 0xD7) return c + 32;                        // À..Þ
    if (c >= 0x100 && c <= 0x137) return c | 1;                       // Ā..ķ pairs
    if (c >= 0x139 && c <= 0x148) return (c & 1) ? c + 1 : c;         // Ĺ..ň
    if (c >= 0x14A && c <= 0x177) return c | 1;                       // Ŋ..ŷ
    if (c == 0x178) return 0xFF;                                      // Ÿ
    if (c >= 0x179 && c <= 0x17E) return (c & 1) ? c + 1 : c;         // Ź..ž
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;        // Greek
    if (c >= 0x410 && c <= 0x42F) return c + 32;                      // Cyrillic А..Я
    if (c >= 0x400 && c <= 0x40F) return c + 80;                      // Ѐ..Џ
    return c;
}

template <typename Emit>
void for_each_token(std::string_view text, Emit&& emit) {
    std::string token;
    std::size_t i = 0;
    while (i < text.size()) {
        const char32_t c = decode(text, i);
        if (is_word(c)) {
            encode(fold(c), token);
        } else if (!token.empty()) {
            emit(token);
            token.clear();
        }
    }
    if (!token.empty()) emit(token);
}

}  // namespace

namespace {

// The key of this process's term hashes, drawn once at start.
struct TermKey {
    std::uint64_t k0, k1;
    TermKey() {
        std::random_device entropy;
        k0 = (std::uint64_t{entropy()} << 32) ^ entropy();
        k1 = (std::uint64_t{entropy()} << 32) ^ entropy();
    }
};

constexpr std::uint64_t rotl(std::uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

struct SipState {
    std::uint64_t v0, v1, v2, v3;
    void round() {
        v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);
        v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;
        v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;
        v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);
    }
    void absorb(std::uint64_t m) {
        v3 ^= m;
        round();  // SipHash-1-3: one compression round...
        v0 ^= m;
    }
};

}  // namespace

// SipHash-1-3 (Aumasson and Bernstein; the variant Rust and Python use for their hash
// tables) under a key drawn at start: terms are compared by hash alone (the percolator
// never reads strings), so a hash an outsider could make collide -- FNV-1a's can be,
// in a minute -- would let a tweet match another word's query. Hashes are never
// stored or sent: they only mean something within one process.
TermHash hash_term(std::string_view folded) {
    static const TermKey key;
    SipState s{key.k0 ^ 0x736f6d6570736575ULL, key.k1 ^ 0x646f72616e646f6dULL, key.k0 ^ 0x6c7967656e657261ULL,
               key.k1 ^ 0x7465646279746573ULL};
    const std::size_t n = folded.size();
    const auto* p = reinterpret_cast<const unsigned char*>(folded.data());
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        std::uint64_t m;
        std::memcpy(&m, p + i, 8);  // little-endian, as on every machine this runs on
        s.absorb(m);
    }
    std::uint64_t last = static_cast<std::uint64_t>(n) << 56;
    for (std::size_t k = 0; i + k < n; ++k) last |= static_cast<std::uint64_t>(p[i + k]) << (8 * k);
    s.absorb(last);
    s.v2 ^= 0xff;
    s.round();  // ...and three finalization rounds
    s.round();
    s.round();
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

void tokenize(std::string_view text, std::vector<TermHash>& out) {
    for_each_token(text, [&](const std::string& token) { out.push_back(hash_term(token)); });
}

void tokenize(std::string_view text, std::vector<std::string>& out) {
    for_each_token(text, [&](const std::string& token) { out.push_back(token); });
}

std::string fold_case(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) encode(fold(decode(text, i)), out);
    return out;
}

std::size_t invalid_utf8_at(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size()) {
        const std::size_t at = i;
        if (decode(text, i) == 0xFFFD && !(i - at == 3 && text.substr(at, 3) == "\xEF\xBF\xBD")) return at;
    }
    return std::string_view::npos;
}

}  // namespace birdwatch
