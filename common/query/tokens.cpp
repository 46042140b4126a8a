#include "common/query/tokens.h"

#include <unicode/uchar.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

#include <algorithm>
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

// X splits keywords on punctuation, symbols and separators, in every script. Here
// letters, marks and numbers make words; a pictograph or other symbol (So: emoji,
// which X matches as keywords) is a token of its own; format characters (joiners,
// soft hyphens), variation selectors and emoji modifiers are skipped without
// splitting; everything else separates. Categories come from ICU.
enum class CharRole { word, symbol, skip, separator };

CharRole role(char32_t c) {
    if (c < 0x80) {
        const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        return alnum ? CharRole::word : CharRole::separator;
    }
    if (c == 0xFFFD) return CharRole::separator;  // what malformed UTF-8 decodes to
    const auto cp = static_cast<UChar32>(c);
    switch (u_charType(cp)) {
        case U_NON_SPACING_MARK:  // variation selectors are marks, but only choose a glyph
            return u_hasBinaryProperty(cp, UCHAR_VARIATION_SELECTOR) ? CharRole::skip : CharRole::word;
        case U_MODIFIER_SYMBOL:  // emoji skin tones modify the emoji before them
            return u_hasBinaryProperty(cp, UCHAR_EMOJI_MODIFIER) ? CharRole::skip : CharRole::separator;
        case U_UPPERCASE_LETTER: case U_LOWERCASE_LETTER: case U_TITLECASE_LETTER: case U_MODIFIER_LETTER:
        case U_OTHER_LETTER: case U_ENCLOSING_MARK: case U_COMBINING_SPACING_MARK:
        case U_DECIMAL_DIGIT_NUMBER: case U_LETTER_NUMBER: case U_OTHER_NUMBER:
            return CharRole::word;
        case U_OTHER_SYMBOL:
            return CharRole::symbol;
        case U_FORMAT_CHAR:
            return CharRole::skip;
        default:
            return CharRole::separator;
    }
}

// Full Unicode case folding (ß -> ss, ΐ -> ΐ, ﬁ -> fi): simple folding from ICU per
// code point, and the few code points whose full folding is several code points,
// collected from ICU once.
class CaseFolder {
public:
    CaseFolder() {
        for (char32_t c = 0x80; c <= 0xFFFF; ++c) {
            const UChar in[1] = {static_cast<UChar>(c)};
            UChar out[8];
            UErrorCode status = U_ZERO_ERROR;
            const int32_t n = u_strFoldCase(out, 8, in, 1, U_FOLD_CASE_DEFAULT, &status);
            if (U_FAILURE(status) || n <= 1) continue;
            std::string utf8;
            for (int32_t i = 0; i < n;) {
                UChar32 cp;
                U16_NEXT(out, i, n, cp);
                encode(static_cast<char32_t>(cp), utf8);
            }
            expansions_.emplace_back(c, std::move(utf8));
        }
    }
    void append(char32_t c, std::string& out) const {
        if (c >= 0x80) {
            const auto it = std::lower_bound(expansions_.begin(), expansions_.end(), c,
                                             [](const auto& entry, char32_t key) { return entry.first < key; });
            if (it != expansions_.end() && it->first == c) {
                out += it->second;
                return;
            }
            c = static_cast<char32_t>(u_foldCase(static_cast<UChar32>(c), U_FOLD_CASE_DEFAULT));
        } else if (c >= 'A' && c <= 'Z') {
            c += 32;
        }
        encode(c, out);
    }

private:
    std::vector<std::pair<char32_t, std::string>> expansions_;  // sorted by code point
};

const CaseFolder& folder() {
    static const CaseFolder instance;
    return instance;
}

template <typename Emit>
void for_each_token(std::string_view text, Emit&& emit) {
    const CaseFolder& fold = folder();
    std::string token;
    std::size_t i = 0;
    while (i < text.size()) {
        if (const auto byte = static_cast<unsigned char>(text[i]); byte < 0x80) {  // the common case, inline
            ++i;
            if ((byte >= 'a' && byte <= 'z') || (byte >= '0' && byte <= '9')) {
                token.push_back(static_cast<char>(byte));
            } else if (byte >= 'A' && byte <= 'Z') {
                token.push_back(static_cast<char>(byte + 32));
            } else if (!token.empty()) {
                emit(token);
                token.clear();
            }
            continue;
        }
        const char32_t c = decode(text, i);
        switch (role(c)) {
            case CharRole::word:
                fold.append(c, token);
                break;
            case CharRole::skip:
                break;
            case CharRole::symbol:
            case CharRole::separator:
                if (!token.empty()) {
                    emit(token);
                    token.clear();
                }
                if (role(c) == CharRole::symbol) {
                    fold.append(c, token);
                    emit(token);
                    token.clear();
                }
                break;
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
    const CaseFolder& fold = folder();
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        if (const auto byte = static_cast<unsigned char>(text[i]); byte < 0x80) {
            out.push_back(static_cast<char>(byte >= 'A' && byte <= 'Z' ? byte + 32 : byte));
            ++i;
            continue;
        }
        fold.append(decode(text, i), out);
    }
    return out;
}

bool is_hashtag_text(std::string_view tag) {
    if (tag.empty()) return false;
    std::size_t i = 0;
    while (i < tag.size()) {
        const char32_t c = decode(tag, i);
        if (c != '_' && (c == 0xFFFD || role(c) != CharRole::word)) return false;
    }
    return true;
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
