#pragma once
// A local stand-in for ElasticSearch that speaks the documented REST API as far as
// birdwatch uses it: index templates, _bulk (NDJSON, per-item results, errors:true),
// delete actions, _doc, _count and _search (bool/term/match_phrase/range/exists, sort, size), with
// faults to inject: per-document item statuses, whole-request statuses, slowness.
// It is not ElasticSearch: tests against it show the client follows the documented
// protocol, not that a real cluster agrees.

#include "tests/support/script_server.h"

#include <nlohmann/json.hpp>

#include <deque>
#include <map>
#include <mutex>
#include <string>

namespace birdwatch::test {

class FakeElastic {
public:
    FakeElastic();
    std::string url() const { return server_.base_url(); }

    // The next bulk items for document `id` answer these statuses, in turn (e.g. 429, 503, then success).
    void fail_item(const std::string& id, std::vector<int> statuses);
    // The next whole _bulk requests answer these statuses.
    void fail_requests(std::vector<int> statuses);
    void delay_responses(std::chrono::milliseconds delay);

    std::size_t documents() const;
    std::map<std::string, int> index_ops() const;  // successful index operations per id
    bool has_template(const std::string& name) const;
    std::vector<RecordedRequest> requests() const { return server_.requests(); }

private:
    ScriptedResponse handle(const RecordedRequest& request);
    ScriptedResponse bulk(const std::string& body);
    ScriptedResponse search(const nlohmann::json& body) const;

    mutable std::mutex mutex_;
    std::map<std::string, nlohmann::json> docs_;
    std::map<std::string, int> index_ops_;
    std::map<std::string, std::deque<int>> item_faults_;
    std::deque<int> request_faults_;
    std::map<std::string, nlohmann::json> templates_;
    std::chrono::milliseconds delay_{0};
    ScriptServer server_;
};

}  // namespace birdwatch::test
