#include "tests/support/fake_elastic.h"

#include <algorithm>
#include <sstream>
#include <thread>

namespace birdwatch::test {

using nlohmann::json;

namespace {

ScriptedResponse reply(int status, const json& body) {
    return ScriptedResponse{status, "application/json", {body.dump()}, {}, false};
}

std::vector<std::string> words(const std::string& s) {
    std::istringstream in(s);
    std::vector<std::string> out;
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

// The single "field": value member of a query clause. (Not a structured binding over
// items(): that proxy is a temporary, and binding into it dangles.)
std::pair<std::string, json> only_member(const json& clause) {
    const auto it = clause.begin();
    return {it.key(), it.value()};
}

bool field_has(const json& doc, const std::string& field, const json& value) {
    if (!doc.contains(field)) return false;
    const json& v = doc[field];
    if (v.is_array()) return std::find(v.begin(), v.end(), value) != v.end();
    return v == value;
}

// The query DSL subset ElasticStore emits, with ES's meaning.
bool eval(const json& q, const json& doc) {
    if (q.contains("bool")) {
        const json& b = q["bool"];
        for (const char* key : {"filter", "must"})
            if (b.contains(key))
                for (const auto& c : b[key]) if (!eval(c, doc)) return false;
        if (b.contains("must_not"))
            for (const auto& c : b["must_not"]) if (eval(c, doc)) return false;
        if (b.contains("should")) {
            int hits = 0;
            for (const auto& c : b["should"]) hits += eval(c, doc);
            if (hits < b.value("minimum_should_match", 1)) return false;
        }
        return true;
    }
    if (q.contains("term")) {
        const auto [field, value] = only_member(q["term"]);
        return field_has(doc, field, value);
    }
    if (q.contains("match_phrase")) {
        const auto [field, value] = only_member(q["match_phrase"]);
        const auto text = words(doc.value(field, std::string()));
        const auto phrase = words(value.get<std::string>());
        return std::search(text.begin(), text.end(), phrase.begin(), phrase.end()) != text.end();
    }
    if (q.contains("range")) {
        const auto [field, bounds] = only_member(q["range"]);
        const auto v = doc.value(field, 0LL);
        return (!bounds.contains("lt") || v < bounds["lt"].get<long long>()) &&
               (!bounds.contains("gt") || v > bounds["gt"].get<long long>());
    }
    if (q.contains("exists")) {
        const std::string field = q["exists"]["field"];
        return doc.contains(field) && !(doc[field].is_array() && doc[field].empty()) && !doc[field].is_null();
    }
    return false;
}

}  // namespace

FakeElastic::FakeElastic() {
    server_.set_handler([this](const RecordedRequest& r) { return handle(r); });
}

void FakeElastic::fail_item(const std::string& id, std::vector<int> statuses) {
    std::lock_guard lock(mutex_);
    for (int s : statuses) item_faults_[id].push_back(s);
}

void FakeElastic::fail_requests(std::vector<int> statuses) {
    std::lock_guard lock(mutex_);
    for (int s : statuses) request_faults_.push_back(s);
}

void FakeElastic::delay_responses(std::chrono::milliseconds delay) {
    std::lock_guard lock(mutex_);
    delay_ = delay;
}

std::size_t FakeElastic::documents() const {
    std::lock_guard lock(mutex_);
    return docs_.size();
}

std::map<std::string, int> FakeElastic::index_ops() const {
    std::lock_guard lock(mutex_);
    return index_ops_;
}

bool FakeElastic::has_template(const std::string& name) const {
    std::lock_guard lock(mutex_);
    return templates_.count(name) > 0;
}

ScriptedResponse FakeElastic::handle(const RecordedRequest& r) {
    std::chrono::milliseconds delay;
    {
        std::lock_guard lock(mutex_);
        delay = delay_;
    }
    if (delay.count()) std::this_thread::sleep_for(delay);
    const std::string path = r.target.substr(0, r.target.find('?'));
    std::lock_guard lock(mutex_);
    if (path.rfind("/_index_template/", 0) == 0) {
        const std::string name = path.substr(17);
        if (r.method == "PUT") {
            templates_[name] = json::parse(r.body);
            return reply(200, {{"acknowledged", true}});
        }
        if (!templates_.count(name))
            return reply(404, {{"error", {{"type", "resource_not_found_exception"}, {"reason", "index template matching [" + name + "] not found"}}}, {"status", 404}});
        return reply(200, {{"index_templates", json::array({{{"name", name}, {"index_template", templates_[name]}}})}});
    }
    if (path == "/_bulk" && r.method == "POST") {
        if (r.headers.count("content-type") == 0 || r.headers.at("content-type") != "application/x-ndjson")
            return reply(406, {{"error", "Content-Type must be application/x-ndjson"}});
        if (r.body.empty() || r.body.back() != '\n')
            return reply(400, {{"error", {{"type", "illegal_argument_exception"}, {"reason", "The bulk request must be terminated by a newline [\\n]"}}}});
        if (!request_faults_.empty()) {
            const int status = request_faults_.front();
            request_faults_.pop_front();
            return reply(status, {{"error", {{"type", status == 429 ? "es_rejected_execution_exception" : "unavailable_shards_exception"}, {"reason", "injected"}}}, {"status", status}});
        }
        return bulk(r.body);
    }
    const auto slash = path.find('/', 1);
    const std::string rest = slash == std::string::npos ? "" : path.substr(slash);
    if (rest.rfind("/_doc/", 0) == 0) {
        const std::string id = rest.substr(6);
        if (!docs_.count(id)) return reply(404, {{"_id", id}, {"found", false}});
        return reply(200, {{"_id", id}, {"found", true}, {"_source", docs_[id]}});
    }
    if (rest == "/_count") return reply(200, {{"count", docs_.size()}});
    if (rest == "/_search") return search(json::parse(r.body));
    return reply(400, {{"error", "fake elasticsearch: unsupported request " + r.method + " " + r.target}});
}

ScriptedResponse FakeElastic::bulk(const std::string& body) {
    std::istringstream in(body);
    std::string action_line, source_line;
    json items = json::array();
    bool errors = false;
    while (std::getline(in, action_line)) {
        const json action = json::parse(action_line);
        if (action.contains("delete")) {  // no source line follows a delete
            const std::string id = action["delete"].at("_id");
            const bool existed = docs_.erase(id) > 0;
            items.push_back({{"delete", {{"_id", id}, {"status", existed ? 200 : 404},
                                         {"result", existed ? "deleted" : "not_found"}}}});
            continue;
        }
        if (!std::getline(in, source_line)) break;
        const json& meta = action.at("index");
        const std::string id = meta.at("_id");
        int status = 201;
        auto fault = item_faults_.find(id);
        if (fault != item_faults_.end() && !fault->second.empty()) {
            status = fault->second.front();
            fault->second.pop_front();
        }
        json item = {{"_index", meta.value("_index", "")}, {"_id", id}, {"status", status}};
        if (status == 201) {
            const bool existed = docs_.count(id) > 0;
            docs_[id] = json::parse(source_line);
            ++index_ops_[id];
            item["status"] = existed ? 200 : 201;
            item["result"] = existed ? "updated" : "created";
        } else {
            errors = true;
            item["error"] = {{"type", status == 429 ? "es_rejected_execution_exception" : status == 400 ? "mapper_parsing_exception" : "unavailable_shards_exception"},
                             {"reason", status == 400 ? "failed to parse field [created_at]" : "injected"}};
        }
        items.push_back({{"index", item}});
    }
    return reply(200, {{"took", 1}, {"errors", errors}, {"items", items}});
}

ScriptedResponse FakeElastic::search(const json& body) const {
    std::vector<const json*> hits;
    for (const auto& [id, doc] : docs_)
        if (eval(body.at("query"), doc)) hits.push_back(&doc);
    // sort: [{"id_num":"desc"|"asc"}], the only sort the store asks for
    const bool ascending = body.contains("sort") && body["sort"].dump().find("\"asc\"") != std::string::npos;
    std::sort(hits.begin(), hits.end(), [ascending](const json* a, const json* b) {
        return ascending ? (*a)["id_num"] < (*b)["id_num"] : (*a)["id_num"] > (*b)["id_num"];
    });
    const std::size_t size = body.value("size", 10);
    json out = json::array();
    for (std::size_t i = 0; i < hits.size() && i < size; ++i) out.push_back({{"_source", *hits[i]}});
    return reply(200, {{"hits", {{"total", {{"value", hits.size()}, {"relation", "eq"}}}, {"hits", out}}}});
}

}  // namespace birdwatch::test
