#pragma once
// The live-search query language: X's filtered-stream rule syntax (docs/query-language.md).
// parse_query() yields the syntax tree, its canonical text (normalised case,
// whitespace and operand order) and a stable id derived from that text, or an
// error saying what is wrong and where.

#include "common/query/tokens.h"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace birdwatch {

struct QueryNode {
    enum class Kind {
        all_of, any_of, negation,                  // AND (implicit), OR, -x
        word, phrase,                              // keyword (one token), "exact phrase" (token sequence)
        hashtag, mention, from, to, lang,          // #x @x from:x to:x lang:xx
        is_retweet, is_reply, has_links, has_media, has_hashtags,
    };
    Kind kind = Kind::word;
    std::vector<std::string> tokens;  // word/phrase: folded tokens; hashtag, mention, from, to, lang: the folded value
    std::vector<TermHash> hashes;     // hash_term() of each of `tokens`
    std::vector<QueryNode> children;  // all_of, any_of (two or more), negation (one)
    std::size_t position = 0;         // where it starts in the text, in characters (for errors)

    bool is_leaf() const { return children.empty(); }
};

struct ParsedQuery {
    QueryNode root;
    std::string canonical;
    std::string id;  // query_id(canonical): the same in every process
};

struct QueryError {
    std::string message;   // plain words, naming the position
    std::size_t position;  // in characters (code points) from the start, 0-based
};

struct QueryParse {
    std::optional<ParsedQuery> query;
    QueryError error;  // when !query
};

inline constexpr std::size_t max_query_chars = 512;
inline constexpr int max_query_depth = 10;
inline constexpr std::size_t max_query_terms = 64;

QueryParse parse_query(std::string_view text);

std::string canonical_text(const QueryNode& node);
// "q" + the first 128 bits of SHA-256(canonical) in hex: two different texts never
// share an id in practice, even when someone searches for a collision.
std::string query_id(std::string_view canonical);
inline constexpr std::size_t query_id_length = 33;

}  // namespace birdwatch
