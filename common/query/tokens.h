#pragma once
// Tokenization as X documents it for filtered-stream keywords: text is split on
// punctuation, symbols and separators of every script (Unicode categories, from
// ICU); an emoji or other pictographic symbol is a keyword of its own; matching is
// case-insensitive (full Unicode case folding); accents stay significant. Tokens
// are kept as 64-bit keyed hashes of their case-folded UTF-8.
//
// Approximation (documented in docs/query-language.md): scripts written without
// spaces (Japanese, Chinese, Thai) form one token per unbroken run.

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
// True when `tag` (without '#') is a hashtag X accepts: letters, marks and digits of any script, and '_'.
bool is_hashtag_text(std::string_view tag);
// A keyed hash (the key drawn at process start): equal within one process, different
// between processes, and not something an outsider can make collide.
TermHash hash_term(std::string_view folded);

// Byte offset of the first invalid UTF-8 sequence, or npos when valid.
std::size_t invalid_utf8_at(std::string_view text);

}  // namespace birdwatch
