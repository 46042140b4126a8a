#pragma once
// Tokenization as X documents it for filtered-stream keywords: text is split on
// punctuation, symbols and separators; matching is case-insensitive; accents
// stay significant. Tokens are kept as 64-bit keyed hashes of their case-folded UTF-8.
//
// Approximations (documented in docs/query-language.md): case folding covers
// Latin, Greek and Cyrillic; scripts written without spaces (Japanese, Chinese)
// form one token per unbroken run.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace birdwatch {

using TermHash = std::uint64_t;

// Appends each token's hash, in text order.
void tokenize(std::string_view text, std::vector<TermHash>& out);
// Appends each token as case-folded UTF-8, in text order.
void tokenize(std::string_view text, std::vector<std::string>& out);

std::string fold_case(std::string_view text);
// A keyed hash (the key drawn at process start): equal within one process, different
// between processes, and not something an outsider can make collide.
TermHash hash_term(std::string_view folded);

// Byte offset of the first invalid UTF-8 sequence, or npos when valid.
std::size_t invalid_utf8_at(std::string_view text);

}  // namespace birdwatch
