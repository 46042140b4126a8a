#pragma once
// Finds, for each tweet, the registered queries it matches. Like Lucene's Monitor,
// each query is indexed under a small set of terms of which at least one must occur
// in any tweet it matches (a conjunction needs only its most selective part; a
// disjunction needs one term from each alternative). A tweet's terms select the
// candidate queries; only candidates are evaluated. Cost grows with candidates,
// not with the number of registered queries.
//
// Single-threaded by design: it lives on the pipeline thread, and query additions
// and removals reach it through that thread's input, between tweets.

#include "common/query/matcher.h"

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace birdwatch {

class Percolator {
public:
    // False when a query with that id is already registered.
    bool add(const ParsedQuery& query);
    // False when no query has that id.
    bool remove(const std::string& id);
    std::size_t size() const { return by_id_.size(); }
    template <typename Visit>
    void for_each_id(Visit&& visit) const {
        for (const auto& [id, slot] : by_id_) visit(id);
    }

    // Appends the ids of all matching queries, each once, in no particular order.
    void match(const TweetFeatures& tweet, std::vector<const std::string*>& out);
    // The same result by evaluating every registered query: the reference for tests and benchmarks.
    void match_brute_force(const TweetFeatures& tweet, std::vector<const std::string*>& out) const;

    std::uint64_t candidates_evaluated() const { return candidates_evaluated_; }

private:
    struct Slot {
        std::string id;
        QueryNode root;
        std::vector<std::uint64_t> keys;
        bool live = false;
    };

    std::vector<Slot> slots_;
    std::vector<std::uint32_t> seen_;  // per slot: the last match() round that evaluated it
    std::vector<std::uint32_t> free_slots_;
    std::unordered_map<std::string, std::uint32_t> by_id_;
    std::unordered_map<std::uint64_t, std::vector<std::uint32_t>> postings_;
    std::vector<std::uint64_t> tweet_keys_;
    std::uint32_t round_ = 0;
    std::uint64_t candidates_evaluated_ = 0;
};

// The presearch keys of an anchored query (empty for an unanchored one).
std::vector<std::uint64_t> presearch_keys(const QueryNode& query);

}  // namespace birdwatch
