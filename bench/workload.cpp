#include "bench/workload.h"

#include "common/query/tokens.h"
#include "common/tweet_parser.h"
#include "ingest/sources/synthetic_corpus.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <unordered_map>

namespace birdwatch::workload {

std::vector<Tweet> synthetic_tweets(std::size_t count, std::uint64_t seed) {
    SyntheticCorpus corpus(seed, 1700000000000, 10);
    TweetParser parser;
    std::vector<Tweet> tweets;
    while (tweets.size() < count) parser.parse(corpus.next(), tweets);
    return tweets;
}

std::vector<std::string> load_lines(const std::string& shared_dir, std::size_t count, std::string& source) {
    std::vector<std::string> lines;
    for (const char* file : {"v1-stream.jsonl", "v1-stream-legacy.jsonl", "v1-rest.jsonl", "v2-tweets.jsonl",
                             "v2-pages.jsonl", "v1-sequence-filter.jsonl", "v1-sequence-sample.jsonl"}) {
        std::ifstream in(shared_dir + "/" + file);
        for (std::string line; lines.size() < count && std::getline(in, line);) lines.push_back(std::move(line));
    }
    if (lines.empty()) {
        source = "synthetic corpus (no shared data at " + shared_dir + ")";
        SyntheticCorpus corpus(1, 1700000000000, 10);
        while (lines.size() < count) lines.push_back(corpus.next());
        return lines;
    }
    source = "real tweets from " + shared_dir;
    return lines;
}

std::vector<Tweet> load_tweets(const std::string& shared_dir, std::size_t count, std::string& source) {
    TweetParser parser;
    std::vector<Tweet> tweets;
    for (const auto& line : load_lines(shared_dir, count, source)) {
        if (tweets.size() >= count) break;
        parser.parse(line, tweets);
    }
    return tweets;
}

QueryGenerator::QueryGenerator(const std::vector<Tweet>& tweets, std::uint64_t seed) : random_(seed) {
    std::set<std::string> words, tags, mentions, authors, replies, langs, phrases;
    for (const Tweet& t : tweets) {
        std::vector<std::string> tokens;
        tokenize(t.text, tokens);
        for (std::size_t i = 0; i < tokens.size(); ++i) {
            word_occurrences_.push_back(tokens[i]);
            words.insert(tokens[i]);
            if (i + 1 < tokens.size() && i % 3 == 0) phrases.insert(tokens[i] + " " + tokens[i + 1]);
        }
        for (const auto& h : t.hashtags) {
            std::vector<std::string> parts;
            tokenize(h, parts);
            if (parts.size() == 1 && parts[0] == fold_case(h)) tags.insert(h);
        }
        auto username = [](const std::string& u) {
            return !u.empty() && u.size() <= 15 && u.find_first_not_of(
                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == std::string::npos;
        };
        for (const auto& m : t.mentions) if (username(m)) mentions.insert(m);
        if (username(t.user.screen_name)) authors.insert(t.user.screen_name);
        if (username(t.in_reply_to_user)) replies.insert(t.in_reply_to_user);
        if (t.lang.size() == 2) langs.insert(t.lang);
    }
    // Saved searches are about topics: keywords are content words, not the most
    // frequent tokens (the, rt, https, co, ...) nor fragments under three characters.
    std::unordered_map<std::string, std::size_t> frequency;
    for (const auto& w : word_occurrences_) ++frequency[w];
    std::vector<std::pair<std::size_t, std::string>> by_frequency;
    for (const auto& [w, n] : frequency) by_frequency.emplace_back(n, w);
    std::sort(by_frequency.rbegin(), by_frequency.rend());
    std::set<std::string> stop;
    for (std::size_t i = 0; i < std::min<std::size_t>(100, by_frequency.size()); ++i) stop.insert(by_frequency[i].second);
    for (const auto& w : words)
        if (!stop.count(w) && w.size() >= 3) distinct_words_.push_back(w);
    std::erase_if(word_occurrences_, [&](const std::string& w) { return stop.count(w) || w.size() < 3; });
    std::erase_if(phrases, [&](const std::string& p) {
        const auto space = p.find(' ');
        return stop.count(p.substr(0, space)) && stop.count(p.substr(space + 1));
    });
    hashtags_.assign(tags.begin(), tags.end());
    mentions_.assign(mentions.begin(), mentions.end());
    authors_.assign(authors.begin(), authors.end());
    reply_users_.assign(replies.begin(), replies.end());
    langs_.assign(langs.begin(), langs.end());
    phrases_.assign(phrases.begin(), phrases.end());
    if (hashtags_.empty()) hashtags_.push_back("news");
    if (mentions_.empty()) mentions_.push_back("jack");
    if (reply_users_.empty()) reply_users_ = authors_;
    if (langs_.empty()) langs_.push_back("en");
}

const std::string& QueryGenerator::pick(const std::vector<std::string>& from) { return from[random() % from.size()]; }

// Mostly by vocabulary (rare words, as most saved searches are), sometimes by frequency.
std::string QueryGenerator::word() { return random() % 10 < 7 ? pick(distinct_words_) : pick(word_occurrences_); }

std::string QueryGenerator::next() {
    static const char* filters[] = {"is:retweet", "is:reply", "has:links", "has:media", "has:hashtags"};
    switch (random() % 12) {
        case 0: case 1: return word();
        case 2: case 3: return word() + " " + word();
        case 4: return word() + " OR " + word();
        case 5: return "\"" + pick(phrases_) + "\"";
        case 6: return "#" + pick(hashtags_) + (random() % 2 ? " " + word() : "");
        case 7: return "@" + pick(mentions_) + " OR from:" + pick(authors_);
        case 8: return "to:" + pick(reply_users_) + " OR " + word();
        case 9: return word() + " lang:" + pick(langs_) + " " + (random() % 2 ? "-" : "") + filters[random() % 5];
        case 10: return word() + " -" + word();
        default: return "(" + word() + " OR #" + pick(hashtags_) + ") " + word() + " -(" + word() + " OR " + word() + ")";
    }
}

}  // namespace birdwatch::workload
