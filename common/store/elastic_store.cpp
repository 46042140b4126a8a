#include "common/store/elastic_store.h"

#include "common/json_read.h"
#include "common/query/tokens.h"

#include <curl/curl.h>

#include <charconv>
#include <thread>

namespace birdwatch {

using nlohmann::json;
using Kind = QueryNode::Kind;
using json_read::integer_or;
using json_read::member;
using json_read::string_at;

namespace {

std::vector<std::string> folded(const std::vector<std::string>& values) {
    std::vector<std::string> out;
    for (const auto& v : values) out.push_back(fold_case(v));
    return out;
}

bool retryable(long status) { return status == 429 || status == 502 || status == 503 || status == 504; }

std::size_t collect(char* data, std::size_t size, std::size_t n, void* out) {
    static_cast<std::string*>(out)->append(data, size * n);
    return size * n;
}

}  // namespace

ElasticOptions elastic_options_from(const json& es) {
    ElasticOptions o;
    o.url = es["url"];
    o.index = es["index"];
    o.username = es["username"];
    o.password = es["password"];
    o.api_key = es["api_key"];
    o.timeout_ms = es["timeout_ms"];
    return o;
}

json elastic_template(const std::string& index) {
    auto keyword = json{{"type", "keyword"}};
    auto boolean = json{{"type", "boolean"}};
    return {
        {"index_patterns", {index + "*"}},
        {"template",
         {{"settings", {{"analysis", {{"analyzer", {{"birdwatch_tokens", {{"type", "custom"}, {"tokenizer", "whitespace"}}}}}}}}},
          {"mappings",
           {{"dynamic", "strict"},
            {"properties",
             {{"id", keyword},
              {"id_num", {{"type", "long"}}},
              {"created_at", {{"type", "date"}, {"format", "epoch_millis"}}},
              {"text", {{"type", "text"}}},  // analysed by ES, for ad-hoc search
              {"terms", {{"type", "text"}, {"analyzer", "birdwatch_tokens"}}},  // our tokens: live-search semantics
              {"lang", keyword}, {"screen_name", keyword}, {"reply_to", keyword},
              {"hashtags", keyword}, {"mentions", keyword},
              {"is_retweet", boolean}, {"is_reply", boolean}, {"has_links", boolean}, {"has_media", boolean},
              {"json", {{"type", "keyword"}, {"index", false}, {"doc_values", false}}}}}}}}},
    };
}

json elastic_document(const StoredTweet& s) {
    const Tweet& t = s.tweet;
    std::vector<std::string> tokens;
    for_each_searchable_text(t, [&](const std::string& text) { tokenize(text, tokens); });
    std::string terms;
    for (const auto& token : tokens) terms += (terms.empty() ? "" : " ") + token;
    std::int64_t id_num = 0;
    std::from_chars(t.id.data(), t.id.data() + t.id.size(), id_num);
    return {{"id", t.id}, {"id_num", id_num}, {"created_at", t.created_at_ms}, {"text", t.text}, {"terms", terms},
            {"lang", fold_case(t.lang)}, {"screen_name", fold_case(t.user.screen_name)},
            {"reply_to", fold_case(t.in_reply_to_user)}, {"hashtags", folded(searchable_hashtags(t))},
            {"mentions", folded(searchable_mentions(t))}, {"is_retweet", !t.retweet_of.empty()},
            {"is_reply", !t.in_reply_to.empty()}, {"has_links", searchable_has_links(t)}, {"has_media", t.has_media},
            {"json", s.json}};
}

json elastic_query(const QueryNode& q) {
    auto phrase = [&](const std::vector<std::string>& tokens) {
        std::string text;
        for (const auto& t : tokens) text += (text.empty() ? "" : " ") + t;
        return json{{"match_phrase", {{"terms", text}}}};
    };
    auto term = [](const char* field, const json& value) { return json{{"term", {{field, value}}}}; };
    switch (q.kind) {
        case Kind::word:
        case Kind::phrase: return phrase(q.tokens);
        case Kind::hashtag: return term("hashtags", q.tokens[0]);
        case Kind::mention: return term("mentions", q.tokens[0]);
        case Kind::from: return term("screen_name", q.tokens[0]);
        case Kind::to: return term("reply_to", q.tokens[0]);
        case Kind::lang: return term("lang", q.tokens[0]);
        case Kind::is_retweet: return term("is_retweet", true);
        case Kind::is_reply: return term("is_reply", true);
        case Kind::has_links: return term("has_links", true);
        case Kind::has_media: return term("has_media", true);
        case Kind::has_hashtags: return json{{"exists", {{"field", "hashtags"}}}};
        case Kind::negation: return json{{"bool", {{"must_not", json::array({elastic_query(q.children[0])})}}}};
        case Kind::all_of: {
            json filter = json::array(), must_not = json::array();
            for (const auto& c : q.children) {
                if (c.kind == Kind::negation)
                    must_not.push_back(elastic_query(c.children[0]));
                else
                    filter.push_back(elastic_query(c));
            }
            json b = {{"filter", filter}};
            if (!must_not.empty()) b["must_not"] = must_not;
            return json{{"bool", b}};
        }
        case Kind::any_of: {
            json should = json::array();
            for (const auto& c : q.children) should.push_back(elastic_query(c));
            return json{{"bool", {{"should", should}, {"minimum_should_match", 1}}}};
        }
    }
    return json::object();
}

struct ElasticStore::Curl {
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> handle{curl_easy_init(), curl_easy_cleanup};
};

ElasticStore::ElasticStore(ElasticOptions options) : options_(std::move(options)), curl_(std::make_unique<Curl>()) {
    if (!options_.sleep) options_.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
}

ElasticStore::~ElasticStore() = default;

ElasticStore::Response ElasticStore::request(const char* method, const std::string& path, const std::string& body,
                                             const char* content_type) {
    Response r;
    CURL* c = curl_->handle.get();
    curl_easy_reset(c);  // keeps the connection cache: keep-alive across requests
    const std::string url = options_.url + path;
    curl_slist* headers = curl_slist_append(nullptr, (std::string("Content-Type: ") + content_type).c_str());
    if (!options_.api_key.empty()) headers = curl_slist_append(headers, ("Authorization: ApiKey " + options_.api_key).c_str());
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, options_.timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
    if (!options_.username.empty()) {
        curl_easy_setopt(c, CURLOPT_USERNAME, options_.username.c_str());
        curl_easy_setopt(c, CURLOPT_PASSWORD, options_.password.c_str());
    }
    if (!body.empty()) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    }
    const CURLcode code = curl_easy_perform(c);
    curl_slist_free_all(headers);
    if (code != CURLE_OK) r.error = curl_easy_strerror(code);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    return r;
}

StoreStatus ElasticStore::ensure_template() {
    const std::string path = "/_index_template/" + options_.index;
    const Response existing = request("GET", path, "");
    if (existing.error.empty() && existing.status == 200) return {};
    if (!existing.error.empty()) return StoreStatus::unavailable("elasticsearch: " + existing.error);
    const Response created = request("PUT", path, elastic_template(options_.index).dump());
    if (!created.error.empty() || created.status != 200)
        return StoreStatus::unavailable("elasticsearch: creating the index template: " +
                                                    (created.error.empty() ? "HTTP " + std::to_string(created.status) + " " + created.body.substr(0, 300) : created.error));
    return {};
}

StoreStatus ElasticStore::write(std::span<const StoredTweet> batch) {
    StoreStatus result;
    std::vector<const StoredTweet*> pending;
    for (const auto& s : batch) pending.push_back(&s);
    auto delay = options_.initial_backoff;
    for (int attempt = 1; !pending.empty(); ++attempt) {
        std::string body;
        for (const StoredTweet* s : pending) {
            body += json{{s->deletion ? "delete" : "index", {{"_index", options_.index}, {"_id", s->tweet.id}}}}.dump();
            body += '\n';
            if (s->deletion) continue;  // a delete action has no source line
            body += elastic_document(*s).dump();
            body += '\n';
        }
        const Response r = request("POST", "/_bulk", body, "application/x-ndjson");
        std::vector<const StoredTweet*> retry;
        std::string why;
        if (!r.error.empty() || r.status != 200) {
            why = r.error.empty() ? "HTTP " + std::to_string(r.status) : r.error;
            if (r.error.empty() && !retryable(r.status) && r.status != 0)
                return StoreStatus::unavailable("elasticsearch _bulk: " + why + " " + r.body.substr(0, 300));
            retry = pending;
        } else {
            std::vector<elastic_reply::BulkItem> items;
            if (!elastic_reply::bulk_items(r.body, pending.size(), items))
                return StoreStatus::unavailable("elasticsearch _bulk: unreadable response");
            for (std::size_t i = 0; i < pending.size(); ++i) {
                const long status = items[i].status;
                if (pending[i]->deletion && (status == 200 || status == 404)) {  // deleted, or never stored
                    result.deleted += status == 200;
                    continue;
                }
                if (status == 201) continue;  // created
                if (status == 200 || status == 409) {  // the id was stored before: updated in place, or a create that exists
                    ++result.duplicates;
                    continue;
                }
                if (retryable(status)) {
                    retry.push_back(pending[i]);
                    why = items[i].reason;
                } else {
                    result.rejections.push_back(pending[i]->tweet.id + ": " + items[i].reason);
                }
            }
        }
        if (retry.empty()) break;
        if (attempt >= options_.max_attempts)
            return StoreStatus::unavailable("elasticsearch _bulk: " + std::to_string(retry.size()) + " still failing after " +
                        std::to_string(attempt) + " attempts (" + why + ")");
        options_.sleep(delay);
        delay = std::min(delay * 2, options_.max_backoff);
        pending = std::move(retry);
    }
    return result;
}

std::optional<std::string> ElasticStore::get(const std::string& id, StoreStatus& status) {
    status = {};
    const Response r = request("GET", "/" + options_.index + "/_doc/" + id, "");
    if (!r.error.empty() || (r.status != 200 && r.status != 404)) {
        status = StoreStatus::unavailable("elasticsearch _doc: " + (r.error.empty() ? "HTTP " + std::to_string(r.status) : r.error));
        return std::nullopt;
    }
    if (r.status == 404) return std::nullopt;
    const json doc = json::parse(r.body, nullptr, false);
    const json* found = member(&doc, "found");
    if (found && found->is_boolean() && !found->get<bool>()) return std::nullopt;
    const std::string* tweet = string_at(member(member(&doc, "_source"), "json"));
    if (!tweet) status = StoreStatus::unavailable("elasticsearch _doc: unreadable response");
    return tweet ? std::optional<std::string>(*tweet) : std::nullopt;
}

std::uint64_t ElasticStore::count(StoreStatus& status) {
    status = {};
    const Response r = request("GET", "/" + options_.index + "/_count", "");
    const json body = json::parse(r.body, nullptr, false);
    const long long count = integer_or(member(&body, "count"), -1);
    if (!r.error.empty() || r.status != 200 || count < 0) {
        status = StoreStatus::unavailable("elasticsearch _count: " + r.failure());
        return 0;
    }
    return static_cast<std::uint64_t>(count);
}

HistoryPage ElasticStore::history(const ParsedQuery& query, const PageRequest& want, StoreStatus& status) {
    status = {};
    HistoryPage page;
    const bool newest_first = want.order == PageRequest::Order::newest_first;
    json filter = json::array({elastic_query(query.root)});
    if (want.before > 0) filter.push_back({{"range", {{"id_num", {{"lt", want.before}}}}}});
    if (want.after > 0) filter.push_back({{"range", {{"id_num", {{"gt", want.after}}}}}});
    const json search = {{"size", want.size},
                         {"sort", json::array({{{"id_num", newest_first ? "desc" : "asc"}}})},
                         {"_source", json::array({"json", "id"})},
                         {"query", {{"bool", {{"filter", filter}}}}}};
    const Response r = request("POST", "/" + options_.index + "/_search", search.dump());
    if (!r.error.empty() || r.status != 200 || !elastic_reply::search_hits(r.body, want.size, page)) {
        status = StoreStatus::unavailable("elasticsearch _search: " + r.failure());
        return {};
    }
    return page;
}

namespace elastic_reply {

bool bulk_items(std::string_view body, std::size_t expected, std::vector<BulkItem>& items) {
    const json response = json::parse(body, nullptr, false);
    const json* all = member(&response, "items");
    if (!all || !all->is_array() || all->size() != expected) return false;
    items.clear();
    for (const json& entry : *all) {  // {"index":{...}}
        const json* item = entry.is_object() && entry.size() == 1 ? &entry.begin().value() : nullptr;
        BulkItem out;
        out.status = static_cast<long>(integer_or(member(item, "status"), 0));
        const json* error = member(item, "error");
        const std::string* type = string_at(member(error, "type"));
        const std::string* detail = string_at(member(error, "reason"));
        if (!item) out.reason = "unreadable item";
        else if (error) out.reason = (type ? *type : "") + ": " + (detail ? *detail : "");
        else if (out.status != 200 && out.status != 201) out.reason = "status " + std::to_string(out.status);
        items.push_back(std::move(out));
    }
    return true;
}

bool search_hits(std::string_view body, std::size_t size, HistoryPage& page) {
    const json parsed = json::parse(body, nullptr, false);
    const json* hits = member(member(&parsed, "hits"), "hits");
    if (!hits || !hits->is_array()) return false;
    std::uint64_t last = 0;
    for (const auto& hit : *hits) {
        const json* source = member(&hit, "_source");
        const std::string* tweet = string_at(member(source, "json"));
        const std::string* id = string_at(member(source, "id"));
        std::uint64_t id_value = 0;
        if (id) std::from_chars(id->data(), id->data() + id->size(), id_value);
        if (id_value != 0) last = id_value;
        if (!tweet || id_value == 0) {
            ++page.skipped;
            continue;
        }
        page.tweets.push_back(*tweet);
    }
    if (hits->size() >= size) page.next = last;
    return true;
}

}  // namespace elastic_reply

}  // namespace birdwatch
