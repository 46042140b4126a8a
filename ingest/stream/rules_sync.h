#pragma once
// X API v2 filtered-stream rules: make the server's rule set equal the configured
// one. Fetch the existing rules, validate the missing ones with dry_run, add the
// valid ones, delete the stale ones. Rejections are reported with X's own message.

#include <string>
#include <vector>

namespace birdwatch {

struct StreamRule {
    std::string value;
    std::string tag;
    bool operator==(const StreamRule&) const = default;
};

struct RulesSyncResult {
    bool ok = false;
    long http_status = 0;             // of the failing request, when !ok
    std::string error;                // why, when !ok
    std::vector<std::string> added, deleted;   // rule values
    std::vector<std::string> rejected;         // "value: X's reason"
};

RulesSyncResult sync_rules(const std::string& base_url, const std::string& bearer_token,
                           const std::vector<StreamRule>& wanted, long timeout_ms = 10000);

}  // namespace birdwatch
