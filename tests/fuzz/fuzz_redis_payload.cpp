// What arrives from Redis: `matches` payloads (the fanout reads their qids, a delete's id,
// a live marker) and query registry events (the ingest follows them). Never a crash; a
// qid list comes back only from a well-formed array of strings; a deleted id is decimal
// digits; an event is add (with its query), remove, mark, hold or drop (the last two
// with a valid replica id); a tweet id is read only from a tweet's "id" string.

#include "common/protocol.h"
#include "common/query_registry.h"
#include "ingest/query_follower.h"

#include <cstdint>
#include <cstdlib>
#include <string>

using namespace birdwatch;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static protocol::PayloadReader reader;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    for (const std::string& qid : reader.qids(text))
        if (qid.size() > size) std::abort();
    for (const char c : protocol::deleted_id(text))
        if (c < '0' || c > '9') std::abort();
    if (const protocol::LiveMarker marker = protocol::read_live_marker(text); marker.qid.size() > 64) std::abort();
    if (const auto update = parse_registry_event(text)) {
        if (update->qid.size() > 64) std::abort();
        if (update->kind == QueryUpdate::Kind::snapshot) std::abort();
        if (update->kind != QueryUpdate::Kind::add && !update->text.empty()) std::abort();
        const bool holding = update->kind == QueryUpdate::Kind::hold || update->kind == QueryUpdate::Kind::drop;
        if (holding && !registry::valid_replica_id(update->replica)) std::abort();
        if (!update->replica.empty() && !registry::valid_replica_id(update->replica)) std::abort();
    }
    if (protocol::tweet_id(text) != 0 && text.find(R"("tweet":{"id":")") == std::string_view::npos) std::abort();
    return 0;
}
