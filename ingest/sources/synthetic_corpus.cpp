#include "ingest/sources/synthetic_corpus.h"

#include "common/json_text.h"

#include <algorithm>
#include <array>
#include <ctime>
#include <string_view>

namespace birdwatch {

namespace {

constexpr std::uint64_t user_pool = 5000;
// Ids follow X's Snowflake layout: milliseconds since X's epoch above 22 low bits. They
// grow with created_at, pass 2^53 as real ids do, and differ between runs that start at
// different times (a restarted demo adds tweets, not repeats), while the same
// (seed, start_ms) still yields the same ids.
constexpr std::int64_t x_epoch_ms = 1288834974657;

struct Language {
    const char* code;
    unsigned weight;
    std::array<std::string_view, 24> words;
};

// Weighted roughly like a public sample stream: mostly English, then Spanish, Japanese, ...
const std::array<Language, 6> languages = {{
    {"en", 55, {"the", "new", "today", "love", "music", "game", "time", "people", "world", "great", "night", "best",
                "just", "watch", "live", "news", "city", "team", "coffee", "rain", "code", "release", "vote", "happy"}},
    {"es", 15, {"hoy", "amor", "vida", "mundo", "noche", "fútbol", "gracias", "mañana", "ciudad", "música", "nuevo",
                "gente", "siempre", "feliz", "partido", "café", "lluvia", "equipo", "noticias", "tiempo", "casa",
                "país", "fiesta", "voto"}},
    {"ja", 10, {"今日", "東京", "音楽", "ありがとう", "ゲーム", "新しい", "世界", "夜", "コーヒー", "雨", "ニュース",
                "猫", "映画", "天気", "友達", "仕事", "春", "桜", "ライブ", "駅", "電車", "ラーメン", "写真", "朝"}},
    {"pt", 8, {"hoje", "amor", "vida", "mundo", "noite", "futebol", "obrigado", "amanhã", "cidade", "música", "novo",
               "gente", "sempre", "feliz", "jogo", "café", "chuva", "time", "notícias", "tempo", "casa", "país",
               "festa", "praia"}},
    {"de", 7, {"heute", "liebe", "leben", "welt", "nacht", "fußball", "danke", "morgen", "stadt", "musik", "neu",
               "leute", "immer", "glücklich", "spiel", "kaffee", "regen", "mannschaft", "nachrichten", "zeit", "haus",
               "land", "straße", "wahl"}},
    {"fr", 5, {"aujourd'hui", "amour", "vie", "monde", "nuit", "football", "merci", "demain", "ville", "musique",
               "nouveau", "gens", "toujours", "heureux", "match", "café", "pluie", "équipe", "nouvelles", "temps",
               "maison", "pays", "fête", "élection"}},
}};

constexpr std::array<std::string_view, 20> hashtag_pool = {
    "music", "news", "worldcup", "tbt", "love", "photography", "tech", "cpp", "gaming", "election",
    "breaking", "nowplaying", "weekend", "travel", "food", "art", "science", "climate", "football", "anime"};

constexpr std::array<std::string_view, 16> syllables = {"ka", "lo", "mi", "ra", "to", "ne", "su", "vi",
                                                        "da", "ri", "po", "le", "an", "jo", "ze", "bu"};

std::string format_v1_time(std::int64_t epoch_ms) {
    const std::time_t seconds = static_cast<std::time_t>(epoch_ms / 1000);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char buffer[40];
    const std::size_t n = std::strftime(buffer, sizeof buffer, "%a %b %d %H:%M:%S +0000 %Y", &utc);
    return std::string(buffer, n);
}

const Language& pick_language(std::uint64_t roll) {
    unsigned total = 0;
    for (const auto& l : languages) total += l.weight;
    auto r = static_cast<unsigned>(roll % total);
    for (const auto& l : languages) {
        if (r < l.weight) return l;
        r -= l.weight;
    }
    return languages[0];
}

}  // namespace

SyntheticCorpus::SyntheticCorpus(std::uint64_t seed, std::int64_t start_ms, std::int64_t spacing_ms)
    : random_(seed), seed_(seed), start_ms_(start_ms), spacing_ms_(std::max<std::int64_t>(1, spacing_ms)) {}

std::uint64_t SyntheticCorpus::snowflake(std::uint64_t n, std::uint64_t low_bits) const {
    const std::int64_t created_ms = start_ms_ + static_cast<std::int64_t>(n) * spacing_ms_;
    return (static_cast<std::uint64_t>(std::max<std::int64_t>(0, created_ms - x_epoch_ms)) << 22) | low_bits;
}

SyntheticCorpus::User SyntheticCorpus::user(std::uint64_t index) const {
    // Derived from the index alone, so a user looks the same in every tweet.
    std::uint64_t h = (index + 1) * 0x9E3779B97F4A7C15ULL ^ seed_;
    std::string screen_name;
    const int parts = 2 + static_cast<int>(h % 3);
    for (int i = 0; i < parts; ++i) {
        h = h * 6364136223846793005ULL + 1442695040888963407ULL;
        screen_name.append(syllables[(h >> 33) % syllables.size()]);
    }
    screen_name += std::to_string(index % 1000);
    std::string name = screen_name.substr(0, screen_name.size() - std::to_string(index % 1000).size());
    name[0] = static_cast<char>(name[0] - 'a' + 'A');
    return {std::to_string(100000 + index * 7919), screen_name, name, static_cast<std::int64_t>((h >> 20) % 250000)};
}

std::string SyntheticCorpus::tweet_text(const char* lang, std::string& entities, std::uint64_t& mention_count) {
    const Language* language = &languages[0];
    for (const auto& l : languages)
        if (std::string_view(l.code) == lang) language = &l;
    std::string text, hashtags, mentions, urls;
    const std::uint64_t words = 4 + below(14);
    for (std::uint64_t i = 0; i < words; ++i) {
        if (!text.empty()) text.push_back(' ');
        const std::uint64_t roll = below(100);
        if (roll < 8) {
            const auto tag = hashtag_pool[below(hashtag_pool.size())];
            if (!hashtags.empty()) hashtags.push_back(',');
            hashtags += "{\"text\":";
            json_text::append_string(hashtags, tag);
            hashtags += "}";
            text += "#";
            text += tag;
        } else if (roll < 12) {
            const User u = user(below(user_pool));
            if (!mentions.empty()) mentions.push_back(',');
            mentions += "{\"screen_name\":\"" + u.screen_name + "\",\"name\":\"" + u.name + "\",\"id_str\":\"" + u.id + "\"}";
            text += "@" + u.screen_name;
            ++mention_count;
        } else {
            text += language->words[below(language->words.size())];
            if (roll < 20) text.push_back(std::string_view(",.!?")[below(4)]);
        }
    }
    if (below(100) < 20) {
        const std::string short_url = "https://t.co/" + std::to_string(random() % 100000000);
        const std::string expanded = "https://example.com/" + std::string(hashtag_pool[below(hashtag_pool.size())]) + "/" +
                                     std::to_string(below(10000));
        text += " " + short_url;
        urls = "{\"url\":\"" + short_url + "\",\"expanded_url\":\"" + expanded + "\"}";
    }
    entities = "{\"hashtags\":[" + hashtags + "],\"user_mentions\":[" + mentions + "],\"urls\":[" + urls + "]";
    if (below(100) < 6) entities += ",\"media\":[{\"type\":\"photo\",\"media_url_https\":\"https://example.com/m.jpg\"}]";
    entities += "}";
    return text;
}

// Retweet and like counts, skewed as engagement is (most posts few, some many), derived
// from the id so that adding them left every seed's stream of draws as it was.
static std::string engagement(const std::string& id) {
    std::uint64_t h = std::stoull(id) * 0x9E3779B97F4A7C15ULL;
    h ^= h >> 29;
    const std::uint64_t retweets = h % 8 == 0 ? h % 5000 : h % 40;
    const std::uint64_t likes = retweets * 3 + (h >> 20) % 60;
    return ",\"retweet_count\":" + std::to_string(retweets) + ",\"favorite_count\":" + std::to_string(likes);
}

std::string SyntheticCorpus::next() {
    const std::uint64_t n = produced_++;
    const std::int64_t created_ms = start_ms_ + static_cast<std::int64_t>(n) * spacing_ms_;
    const std::string id = std::to_string(snowflake(n, below(1000)));
    const User author = user(below(user_pool));
    const char* lang = pick_language(random()).code;
    std::string entities;
    std::uint64_t mentions = 0;
    std::string text = tweet_text(lang, entities, mentions);

    std::string out;
    out.reserve(1024);
    out += "{\"created_at\":\"" + format_v1_time(created_ms) + "\",\"id\":" + id + ",\"id_str\":\"" + id + "\",";

    std::string retweeted;
    const std::uint64_t kind = below(100);
    if (kind < 25 && n > 0) {  // a retweet of an earlier tweet
        const User original = user(below(user_pool));
        const std::string original_id = std::to_string(snowflake(below(n), 0));
        retweeted = ",\"retweeted_status\":{\"id_str\":\"" + original_id + "\",\"text\":";
        json_text::append_string(retweeted, text);
        retweeted += engagement(original_id) + ",\"user\":{\"id_str\":\"" + original.id + "\",\"screen_name\":\"" +
                     original.screen_name + "\"}}";
        text = "RT @" + original.screen_name + ": " + text;
    }
    out += "\"text\":";
    json_text::append_string(out, text);
    out += ",\"source\":\"birdwatch-synthetic\",\"truncated\":false,";
    if (kind >= 25 && kind < 35 && n > 0) {
        const std::string parent = std::to_string(snowflake(below(n), 0));
        const User parent_author = user(below(user_pool));
        out += "\"in_reply_to_status_id_str\":\"" + parent + "\",\"in_reply_to_screen_name\":\"" +
               parent_author.screen_name + "\",";
    } else {
        out += "\"in_reply_to_status_id_str\":null,\"in_reply_to_screen_name\":null,";
    }
    out += "\"user\":{\"id\":" + author.id + ",\"id_str\":\"" + author.id + "\",\"name\":\"" + author.name +
           "\",\"screen_name\":\"" + author.screen_name + "\",\"followers_count\":" + std::to_string(author.followers) +
           ",\"profile_image_url_https\":\"https://example.com/avatar/" + author.id + ".png\"}";
    out += retweeted.empty() ? engagement(id) : ",\"retweet_count\":0,\"favorite_count\":0";  // as X counts a Retweet
    out += retweeted;
    out += ",\"entities\":" + entities;
    out += ",\"lang\":\"";
    out += lang;
    out += "\",\"timestamp_ms\":\"" + std::to_string(created_ms) + "\"}";
    return out;
}

}  // namespace birdwatch
