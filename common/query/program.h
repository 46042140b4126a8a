#pragma once
// A query compiled to a flat instruction array (prefix order), so that evaluating
// it touches one or two cache lines instead of a tree of heap nodes. The percolator
// runs these; the tree evaluator in matcher.h stays the reference semantics and
// tests hold the two equal.

#include "common/query/matcher.h"

#include <cstdint>
#include <vector>

namespace birdwatch {

struct Instruction {
    enum class Op : std::uint8_t {
        all_of, any_of, negation, word, phrase, hashtag, mention, from, to, lang,
        is_retweet, is_reply, has_links, has_media, has_hashtags, phrase_token,
        header,  // not produced by compile(): free for containers that store programs with a header cell
    };
    Op op;
    std::uint32_t size;  // instructions in this subtree, itself included (phrase: 1 + its tokens)
    TermHash term;       // word, hashtag, mention, from, to, lang, phrase_token
};

std::vector<Instruction> compile(const QueryNode& query);
bool run(const Instruction* program, const TweetFeatures& tweet);

}  // namespace birdwatch
