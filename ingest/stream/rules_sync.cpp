#include "ingest/stream/rules_sync.h"

#include <curl/curl.h>
#include "common/json_read.h"

#include <nlohmann/json.hpp>

#include <memory>

namespace birdwatch {

namespace {

struct Response {
    long status = 0;
    std::string body;
    std::string error;
};

std::size_t collect(char* data, std::size_t size, std::size_t n, void* out) {
    static_cast<std::string*>(out)->append(data, size * n);
    return size * n;
}

Response request(const std::string& method, const std::string& url, const std::string& bearer,
                 const std::string& body, long timeout_ms) {
    Response r;
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
    const std::string auth = "Authorization: Bearer " + bearer;
    curl_slist* headers = curl_slist_append(nullptr, auth.c_str());
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl.get(), CURLOPT_USERAGENT, "birdwatch/0.1");
    curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &r.body);
    if (method == "POST") curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body.c_str());
    const CURLcode code = curl_easy_perform(curl.get());
    curl_slist_free_all(headers);
    if (code != CURLE_OK) r.error = curl_easy_strerror(code);
    curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &r.status);
    return r;
}

// X's error objects: {"value":..,"id":..,"title":..,"details":[..],"type":..}
std::string describe(const nlohmann::json& error) {
    std::string text = json_read::string_or(json_read::member(error, "title"), "rejected");
    if (const auto* details = json_read::member(error, "details"); details && details->is_array())
        for (const auto& d : *details)
            if (d.is_string()) text += ": " + d.get<std::string>();
    return text;
}

}  // namespace

RulesSyncResult sync_rules(const std::string& base_url, const std::string& bearer,
                           const std::vector<StreamRule>& wanted, long timeout_ms) {
    RulesSyncResult result;
    const std::string rules_url = base_url + "/2/tweets/search/stream/rules";
    auto fail = [&](const Response& r, const std::string& what) {
        result.http_status = r.status;
        result.error = what + ": " + (r.error.empty() ? "HTTP " + std::to_string(r.status) + " " + r.body.substr(0, 300) : r.error);
        return result;
    };

    const Response existing = request("GET", rules_url, bearer, "", timeout_ms);
    if (!existing.error.empty() || existing.status != 200) return fail(existing, "fetching the stream rules");
    const auto listed = nlohmann::json::parse(existing.body, nullptr, false);
    std::vector<std::pair<std::string, StreamRule>> current;  // id, rule
    if (const auto* data = json_read::member(listed, "data"); data && data->is_array())
        for (const auto& r : *data)
            current.emplace_back(json_read::string_or(json_read::member(r, "id"), ""),
                                 StreamRule{json_read::string_or(json_read::member(r, "value"), ""),
                                            json_read::string_or(json_read::member(r, "tag"), "")});

    std::vector<StreamRule> missing;
    for (const auto& w : wanted) {
        bool present = false;
        for (const auto& [id, rule] : current) present |= rule == w;
        if (!present) missing.push_back(w);
    }
    std::vector<std::string> stale_ids;
    std::vector<std::string> stale_values;
    for (const auto& [id, rule] : current) {
        bool keep = false;
        for (const auto& w : wanted) keep |= rule == w;
        if (!keep) {
            stale_ids.push_back(id);
            stale_values.push_back(rule.value);
        }
    }

    if (!missing.empty()) {
        nlohmann::json add = nlohmann::json::array();
        for (const auto& m : missing) add.push_back(m.tag.empty() ? nlohmann::json{{"value", m.value}}
                                                                  : nlohmann::json{{"value", m.value}, {"tag", m.tag}});
        const Response dry = request("POST", rules_url + "?dry_run=true", bearer, nlohmann::json{{"add", add}}.dump(), timeout_ms);
        if (!dry.error.empty() || (dry.status != 200 && dry.status != 201 && dry.status != 400))
            return fail(dry, "validating the stream rules (dry_run)");
        const auto checked = nlohmann::json::parse(dry.body, nullptr, false);
        nlohmann::json accepted = nlohmann::json::array();
        for (const auto& rule : add) {
            std::string rejection;
            if (const auto* errors = json_read::member(checked, "errors"); errors && errors->is_array())
                for (const auto& e : *errors)
                    if (json_read::string_or(json_read::member(e, "value"), "") == rule["value"]) rejection = describe(e);
            if (rejection.empty())
                accepted.push_back(rule);
            else
                result.rejected.push_back(rule["value"].get<std::string>() + ": " + rejection);
        }
        if (!accepted.empty()) {
            const Response added = request("POST", rules_url, bearer, nlohmann::json{{"add", accepted}}.dump(), timeout_ms);
            if (!added.error.empty() || (added.status != 200 && added.status != 201))
                return fail(added, "adding stream rules");
            for (const auto& a : accepted) result.added.push_back(a["value"]);
        }
    }
    if (!stale_ids.empty()) {
        const Response deleted = request("POST", rules_url, bearer,
                                         nlohmann::json{{"delete", {{"ids", stale_ids}}}}.dump(), timeout_ms);
        if (!deleted.error.empty() || deleted.status != 200) return fail(deleted, "deleting stale stream rules");
        result.deleted = stale_values;
    }
    result.ok = true;
    return result;
}

}  // namespace birdwatch
