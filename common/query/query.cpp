#include "common/query/query.h"

#include <fmt/format.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>

namespace birdwatch {

namespace {

using Kind = QueryNode::Kind;

std::size_t char_position(std::string_view text, std::size_t byte_offset) {
    std::size_t chars = 0;
    for (std::size_t i = 0; i < byte_offset && i < text.size(); ++i)
        chars += (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80;
    return chars;
}

struct Failure {
    std::string message;
    std::size_t byte_offset;
};

bool is_x_username(std::string_view s) {
    if (s.empty() || s.size() > 15) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    });
}

// A Bluesky handle is a domain name: alice.bsky.social.
bool is_bluesky_handle(std::string_view s) {
    if (s.size() < 3 || s.size() > 253 || s.find('.') == std::string_view::npos) return false;
    std::size_t label = 0;
    for (std::size_t i = 0; i <= s.size(); ++i) {
        if (i == s.size() || s[i] == '.') {
            if (label == 0 || label > 63 || s[i - 1] == '-' || s[i - label] == '-') return false;
            label = 0;
            continue;
        }
        const char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')) return false;
        ++label;
    }
    return true;
}

// A Bluesky author known only by its DID: did:plc:ewvi7nxzyoun6zhxrhs64oiz, did:web:example.com.
bool is_did(std::string_view s) {
    if (!s.starts_with("did:") || s.size() > 2048) return false;
    const std::size_t method_end = s.find(':', 4);
    if (method_end == std::string_view::npos || method_end == 4 || method_end + 1 == s.size()) return false;
    return std::all_of(s.begin() + 4, s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
               c == '_' || c == ':' || c == '%';
    });
}

// The users live search names: X usernames, Bluesky handles and DIDs.
bool is_username(std::string_view s) { return is_x_username(s) || is_bluesky_handle(s) || is_did(s); }

bool is_language_code(std::string_view s) {  // en, pt, und, zh-cn, ...
    const std::size_t dash = s.find('-');
    const std::string_view primary = s.substr(0, dash);
    auto letters = [](std::string_view p) {
        return std::all_of(p.begin(), p.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); });
    };
    if (primary.size() < 2 || primary.size() > 3 || !letters(primary)) return false;
    if (dash == std::string_view::npos) return true;
    const std::string_view region = s.substr(dash + 1);
    return region.size() >= 2 && region.size() <= 4 && letters(region);
}

QueryNode leaf(Kind kind, std::vector<std::string> tokens, std::size_t position) {
    QueryNode node;
    node.kind = kind;
    node.position = position;
    node.tokens = std::move(tokens);
    for (const auto& t : node.tokens) node.hashes.push_back(hash_term(t));
    return node;
}

constexpr const char* anchor_hint = "a keyword, \"phrase\", #hashtag, @mention, from: or to:";

// Recursive descent over the raw text. Grammar (AND binds tighter than OR, as on X):
//   or_expr  := and_expr ("OR" and_expr)*
//   and_expr := unary+
//   unary    := "-" primary | primary
//   primary  := "(" or_expr ")" | "\"" phrase "\"" | term
class Parser {
public:
    explicit Parser(std::string_view text) : text_(text) {}

    QueryNode parse() {
        skip_spaces();
        if (at_end()) fail("the query is empty", 0);
        QueryNode root = parse_or(0);
        skip_spaces();
        if (!at_end()) {
            if (text_[pos_] == ')') fail(fmt::format("unexpected ')' at position {}: no '(' is open", here()), pos_);
            fail(fmt::format("unexpected text at position {}", here()), pos_);
        }
        return root;
    }

    std::size_t terms() const { return terms_; }

private:
    [[noreturn]] void fail(std::string message, std::size_t offset) { throw Failure{std::move(message), offset}; }
    std::size_t here() const { return char_position(text_, pos_); }
    std::size_t at(std::size_t offset) const { return char_position(text_, offset); }
    bool at_end() const { return pos_ >= text_.size(); }
    void skip_spaces() {
        while (!at_end() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r'))
            ++pos_;
    }
    bool at_boundary(std::size_t p) const {
        return p >= text_.size() || text_[p] == ' ' || text_[p] == '\t' || text_[p] == '\n' || text_[p] == '\r' ||
               text_[p] == '(' || text_[p] == ')';
    }
    bool at_keyword(std::string_view word) const {
        return text_.substr(pos_, word.size()) == word && at_boundary(pos_ + word.size());
    }

    QueryNode parse_or(int depth) {
        std::vector<QueryNode> alternatives;
        alternatives.push_back(parse_and(depth));
        while (true) {
            skip_spaces();
            if (!at_keyword("OR")) break;
            const std::size_t or_at = pos_;
            pos_ += 2;
            skip_spaces();
            if (at_end() || text_[pos_] == ')')
                fail(fmt::format("'OR' at position {} has nothing on its right", at(or_at)), or_at);
            if (at_keyword("OR")) fail(fmt::format("'OR' at position {} follows another 'OR'", here()), pos_);
            alternatives.push_back(parse_and(depth));
        }
        return group(Kind::any_of, std::move(alternatives));
    }

    QueryNode parse_and(int depth) {
        std::vector<QueryNode> parts;
        while (true) {
            skip_spaces();
            if (at_end() || text_[pos_] == ')' || at_keyword("OR")) break;
            parts.push_back(parse_unary(depth));
        }
        if (parts.empty()) {
            if (at_keyword("OR")) fail(fmt::format("'OR' at position {} has nothing on its left", here()), pos_);
            fail(fmt::format("expected a term at position {}", here()), pos_);
        }
        return group(Kind::all_of, std::move(parts));
    }

    // One operand stands for itself; several form an AND/OR node starting where the first does.
    static QueryNode group(Kind kind, std::vector<QueryNode> operands) {
        if (operands.size() == 1) return std::move(operands[0]);
        QueryNode node;
        node.kind = kind;
        node.position = operands[0].position;
        node.children = std::move(operands);
        return node;
    }

    QueryNode parse_unary(int depth) {
        if (text_[pos_] != '-') return parse_primary(depth);
        const std::size_t minus_at = pos_;
        ++pos_;
        if (!at_end() && text_[pos_] == '-') fail(fmt::format("double negation at position {}", at(minus_at)), minus_at);
        if (at_boundary(pos_) && (at_end() || text_[pos_] != '('))
            fail(fmt::format("'-' at position {} must be followed directly by a term or group, e.g. -cats",
                             at(minus_at)),
                 minus_at);
        QueryNode node;
        node.kind = Kind::negation;
        node.position = at(minus_at);
        node.children.push_back(parse_primary(depth));
        return node;
    }

    QueryNode parse_primary(int depth) {
        const char c = text_[pos_];
        if (c == '(') {
            const std::size_t open_at = pos_;
            if (depth + 1 > max_query_depth)
                fail(fmt::format("parentheses nested deeper than {} levels at position {}", max_query_depth, here()),
                     pos_);
            ++pos_;
            skip_spaces();
            if (at_end()) fail(fmt::format("'(' at position {} is never closed", at(open_at)), open_at);
            if (text_[pos_] == ')') fail(fmt::format("empty parentheses at position {}", at(open_at)), open_at);
            QueryNode inner = parse_or(depth + 1);
            skip_spaces();
            if (at_end() || text_[pos_] != ')')
                fail(fmt::format("'(' at position {} is never closed", at(open_at)), open_at);
            ++pos_;
            return inner;
        }
        if (c == '"') return parse_phrase();
        return parse_term();
    }

    QueryNode parse_phrase() {
        const std::size_t open_at = pos_;
        const std::size_t close = text_.find('"', pos_ + 1);
        if (close == std::string_view::npos)
            fail(fmt::format("the quote at position {} is never closed", at(open_at)), open_at);
        const std::string_view inside = text_.substr(pos_ + 1, close - pos_ - 1);
        pos_ = close + 1;
        if (inside.find_first_not_of(" \t") == std::string_view::npos)
            fail(fmt::format("empty phrase at position {}", at(open_at)), open_at);
        std::vector<std::string> tokens;
        tokenize(inside, tokens);
        if (tokens.empty()) fail(fmt::format("the phrase at position {} has no words to match", at(open_at)), open_at);
        count_term(open_at);
        const Kind kind = tokens.size() == 1 ? Kind::word : Kind::phrase;
        return leaf(kind, std::move(tokens), at(open_at));
    }

    QueryNode parse_term() {
        const std::size_t start = pos_;
        while (!at_boundary(pos_) && text_[pos_] != '"') ++pos_;
        const std::string_view word = text_.substr(start, pos_ - start);
        const std::size_t position = at(start);
        count_term(start);
        if (word == "AND")
            fail(fmt::format("'AND' at position {}: there is no AND operator, terms separated by spaces must all "
                             "match already",
                             position),
                 start);
        if (word[0] == '#') {
            const std::string_view tag = word.substr(1);
            if (tag.empty()) fail(fmt::format("'#' at position {} needs a hashtag, e.g. #cats", position), start);
            if (!is_hashtag_text(tag))
                fail(fmt::format("'{}' at position {} is not a valid hashtag (letters, digits and _)", word, position),
                     start);
            return leaf(Kind::hashtag, {fold_case(tag)}, position);
        }
        if (word[0] == '@') {
            const std::string_view user = word.substr(1);
            if (user.empty()) fail(fmt::format("'@' at position {} needs a username, e.g. @jack", position), start);
            if (!is_username(user))
                fail(fmt::format("'{}' at position {} is not a valid username (1-15 letters, digits or _; or a Bluesky handle or DID)", word,
                                 position),
                     start);
            return leaf(Kind::mention, {fold_case(user)}, position);
        }
        if (const std::size_t colon = word.find(':'); colon != std::string_view::npos && colon > 0) {
            const std::string_view op = word.substr(0, colon);
            if (std::all_of(op.begin(), op.end(), [](char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_'; }))
                return parse_operator(fold_case(op), word.substr(colon + 1), word, start);
        }
        std::vector<std::string> tokens;
        tokenize(word, tokens);
        if (tokens.empty()) fail(fmt::format("'{}' at position {} has no words to match", word, position), start);
        // "coca-cola" unquoted matches the token sequence coca, cola: the same as "coca-cola".
        const Kind kind = tokens.size() == 1 ? Kind::word : Kind::phrase;
        return leaf(kind, std::move(tokens), position);
    }

    QueryNode parse_operator(const std::string& op, std::string_view value, std::string_view word, std::size_t start) {
        const std::size_t position = at(start);
        if (op == "from" || op == "to") {
            if (value.empty()) fail(fmt::format("{}: at position {} needs a username, e.g. {}:jack", op, position, op), start);
            if (!is_username(value))
                fail(fmt::format("'{}' at position {}: '{}' is not a valid username (1-15 letters, digits or _; or a Bluesky handle or DID)", word,
                                 position, value),
                     start);
            return leaf(op == "from" ? Kind::from : Kind::to, {fold_case(value)}, position);
        }
        if (op == "lang") {
            if (value.empty()) fail(fmt::format("lang: at position {} needs a language code, e.g. lang:en", position), start);
            if (!is_language_code(value))
                fail(fmt::format("'{}' at position {}: expected a language code such as en or pt", word, position), start);
            return leaf(Kind::lang, {fold_case(value)}, position);
        }
        if (op == "is") {
            const std::string v = fold_case(value);
            if (v == "retweet") return leaf(Kind::is_retweet, {}, position);
            if (v == "reply") return leaf(Kind::is_reply, {}, position);
            fail(fmt::format("'{}' at position {} is not supported: use is:retweet or is:reply", word, position), start);
        }
        if (op == "has") {
            const std::string v = fold_case(value);
            if (v == "links") return leaf(Kind::has_links, {}, position);
            if (v == "media") return leaf(Kind::has_media, {}, position);
            if (v == "hashtags") return leaf(Kind::has_hashtags, {}, position);
            fail(fmt::format("'{}' at position {} is not supported: use has:links, has:media or has:hashtags", word,
                             position),
                 start);
        }
        fail(fmt::format("operator '{}:' at position {} is not supported (supported: from: to: lang: is: has:)", op,
                         position),
             start);
    }

    void count_term(std::size_t start) {
        if (++terms_ > max_query_terms)
            fail(fmt::format("the query has more than {} terms (at position {})", max_query_terms, at(start)), start);
    }

    std::string_view text_;
    std::size_t pos_ = 0;
    std::size_t terms_ = 0;
};

// Flattens nested AND/OR, removes double negation, sorts and de-duplicates operands:
// the canonical tree, whose text is the same for every spelling of the same query.
void normalise(QueryNode& node) {
    for (auto& child : node.children) normalise(child);
    if (node.kind == Kind::negation && node.children[0].kind == Kind::negation) {
        QueryNode inner = std::move(node.children[0].children[0]);
        node = std::move(inner);
        return;
    }
    if (node.kind != Kind::all_of && node.kind != Kind::any_of) return;
    std::vector<QueryNode> flat;
    for (auto& child : node.children) {
        if (child.kind == node.kind)
            for (auto& grandchild : child.children) flat.push_back(std::move(grandchild));
        else
            flat.push_back(std::move(child));
    }
    std::vector<std::pair<std::string, QueryNode>> keyed;
    for (auto& child : flat) keyed.emplace_back(canonical_text(child), std::move(child));
    std::sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    keyed.erase(std::unique(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) { return a.first == b.first; }),
                keyed.end());
    if (keyed.size() == 1) {
        QueryNode only = std::move(keyed[0].second);
        node = std::move(only);
        return;
    }
    node.children.clear();
    for (auto& [text, child] : keyed) node.children.push_back(std::move(child));
}

// Anchored: the node cannot match without one of its standalone terms (keyword,
// phrase, hashtag, mention, from, to) being present. X requires this of every rule,
// and it is what lets the percolator index every query by its terms.
bool anchored(const QueryNode& node) {
    switch (node.kind) {
        case Kind::word: case Kind::phrase: case Kind::hashtag: case Kind::mention: case Kind::from: case Kind::to:
            return true;
        case Kind::all_of:
            return std::any_of(node.children.begin(), node.children.end(), anchored);
        case Kind::any_of:
            return std::all_of(node.children.begin(), node.children.end(), anchored);
        default:
            return false;
    }
}

// The part that makes a query unanchored: the root itself, or the first OR
// alternative that lacks a standalone term.
const QueryNode* unanchored_part(const QueryNode& root) {
    if (anchored(root)) return nullptr;
    if (root.kind == Kind::any_of)
        for (const auto& alternative : root.children)
            if (!anchored(alternative)) return &alternative;
    return &root;
}

bool only_negations(const QueryNode& node) {
    if (node.kind == Kind::negation) return true;
    if (node.kind == Kind::all_of || node.kind == Kind::any_of)
        return std::all_of(node.children.begin(), node.children.end(), only_negations);
    return false;
}

}  // namespace

std::string canonical_text(const QueryNode& node) {
    switch (node.kind) {
        case Kind::word: return node.tokens[0];
        case Kind::phrase: {
            std::string out = "\"";
            for (std::size_t i = 0; i < node.tokens.size(); ++i) out += (i ? " " : "") + node.tokens[i];
            return out + "\"";
        }
        case Kind::hashtag: return "#" + node.tokens[0];
        case Kind::mention: return "@" + node.tokens[0];
        case Kind::from: return "from:" + node.tokens[0];
        case Kind::to: return "to:" + node.tokens[0];
        case Kind::lang: return "lang:" + node.tokens[0];
        case Kind::is_retweet: return "is:retweet";
        case Kind::is_reply: return "is:reply";
        case Kind::has_links: return "has:links";
        case Kind::has_media: return "has:media";
        case Kind::has_hashtags: return "has:hashtags";
        case Kind::negation: {
            const QueryNode& inner = node.children[0];
            return inner.is_leaf() ? "-" + canonical_text(inner) : "-(" + canonical_text(inner) + ")";
        }
        case Kind::all_of: {
            std::string out;
            for (const auto& child : node.children) {
                if (!out.empty()) out += ' ';
                out += child.kind == Kind::any_of ? "(" + canonical_text(child) + ")" : canonical_text(child);
            }
            return out;
        }
        case Kind::any_of: {
            std::string out;
            for (const auto& child : node.children) {
                if (!out.empty()) out += " OR ";
                out += canonical_text(child);
            }
            return out;
        }
    }
    return {};
}

std::string query_id(std::string_view canonical) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(canonical.data()), canonical.size(), digest);
    static constexpr char hex[] = "0123456789abcdef";
    std::array<char, query_id_length> id{'q'};
    for (std::size_t i = 0; i < (query_id_length - 1) / 2; ++i) {
        id[1 + 2 * i] = hex[digest[i] >> 4];
        id[2 + 2 * i] = hex[digest[i] & 0xF];
    }
    return std::string(id.data(), id.size());
}

QueryParse parse_query(std::string_view text) {
    QueryParse result;
    auto error = [&](std::string message, std::size_t byte_offset) {
        result.error = {std::move(message), char_position(text, byte_offset)};
        return result;
    };
    auto positioned_error = [&](const QueryNode& node, std::string message) {
        result.error = {std::move(message), node.position};
        return result;
    };
    if (const std::size_t bad = invalid_utf8_at(text); bad != std::string_view::npos)
        return error(fmt::format("the query is not valid UTF-8 (at position {})", char_position(text, bad)), bad);
    if (const std::size_t chars = char_position(text, text.size()); chars > max_query_chars)
        return error(fmt::format("the query is {} characters long, the limit is {}", chars, max_query_chars), 0);
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
            return error(fmt::format("control character at position {}", char_position(text, i)), i);
    }
    Parser parser(text);
    QueryNode root;
    try {
        root = parser.parse();
    } catch (const Failure& f) {
        return error(f.message, f.byte_offset);
    }
    normalise(root);
    if (only_negations(root))
        return positioned_error(root, "the query only excludes: add at least one term to match, e.g. cats -dogs");
    if (const QueryNode* loose = unanchored_part(root)) {
        if (root.kind == Kind::any_of)
            return positioned_error(*loose, fmt::format("'{}' at position {} cannot stand alone in an OR: each "
                                                        "alternative needs {}",
                                                        canonical_text(*loose), loose->position, anchor_hint));
        return positioned_error(*loose, fmt::format("'{}' at position {} cannot stand alone: combine it with {}",
                                                    canonical_text(*loose), loose->position, anchor_hint));
    }
    ParsedQuery parsed;
    parsed.canonical = canonical_text(root);
    // The canonical text is what the registry holds and every process parses again, so
    // it must be within the limit too (quoting and grouping can make it longer).
    if (const std::size_t chars = char_position(parsed.canonical, parsed.canonical.size()); chars > max_query_chars)
        return error(fmt::format("the query is {} characters long once normalised, the limit is {}", chars,
                                 max_query_chars),
                     0);
    parsed.id = query_id(parsed.canonical);
    parsed.root = std::move(root);
    result.query = std::move(parsed);
    return result;
}

}  // namespace birdwatch
