#include "common/query/program.h"

#include <algorithm>

namespace birdwatch {

namespace {

using Op = Instruction::Op;
using Kind = QueryNode::Kind;

Op op_of(Kind kind) {
    switch (kind) {
        case Kind::all_of: return Op::all_of;
        case Kind::any_of: return Op::any_of;
        case Kind::negation: return Op::negation;
        case Kind::word: return Op::word;
        case Kind::phrase: return Op::phrase;
        case Kind::hashtag: return Op::hashtag;
        case Kind::mention: return Op::mention;
        case Kind::from: return Op::from;
        case Kind::to: return Op::to;
        case Kind::lang: return Op::lang;
        case Kind::is_retweet: return Op::is_retweet;
        case Kind::is_reply: return Op::is_reply;
        case Kind::has_links: return Op::has_links;
        case Kind::has_media: return Op::has_media;
        case Kind::has_hashtags: return Op::has_hashtags;
    }
    return Op::word;
}

void emit(const QueryNode& node, std::vector<Instruction>& out) {
    const std::size_t at = out.size();
    out.push_back({op_of(node.kind), 1, node.hashes.empty() ? 0 : node.hashes[0]});
    if (node.kind == Kind::phrase)
        for (TermHash h : node.hashes) out.push_back({Op::phrase_token, 1, h});
    for (const auto& child : node.children) emit(child, out);
    out[at].size = static_cast<std::uint32_t>(out.size() - at);
}

}  // namespace

std::vector<Instruction> compile(const QueryNode& query) {
    std::vector<Instruction> program;
    emit(query, program);
    return program;
}

bool run(const Instruction* p, const TweetFeatures& t) {
    switch (p->op) {
        case Op::all_of:
        case Op::any_of: {
            const bool want = p->op == Op::any_of;  // the value that decides early
            const Instruction* end = p + p->size;
            for (const Instruction* child = p + 1; child < end; child += child->size)
                if (run(child, t) == want) return want;
            return !want;
        }
        case Op::negation: return !run(p + 1, t);
        case Op::word: return contains_term(t.token_set, p->term);
        case Op::phrase: {
            const std::size_t n = p->size - 1;
            if (t.tokens.size() < n) return false;
            for (std::size_t i = 0; i + n <= t.tokens.size(); ++i) {
                std::size_t k = 0;
                while (k < n && t.tokens[i + k] == p[1 + k].term) ++k;
                if (k == n) return true;
            }
            return false;
        }
        case Op::hashtag: return contains_term(t.hashtags, p->term);
        case Op::mention: return contains_term(t.mentions, p->term);
        case Op::from: return t.from == p->term;
        case Op::to: return t.to != 0 && t.to == p->term;
        case Op::lang: return t.lang_hash == p->term;
        case Op::is_retweet: return t.is_retweet;
        case Op::is_reply: return t.is_reply;
        case Op::has_links: return t.has_links;
        case Op::has_media: return t.has_media;
        case Op::has_hashtags: return !t.hashtags.empty();
        case Op::phrase_token:
        case Op::header: return false;  // never a subtree of its own
    }
    return false;
}

}  // namespace birdwatch
