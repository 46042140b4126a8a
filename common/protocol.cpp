#include "common/protocol.h"

#include "common/json_text.h"

namespace birdwatch::protocol {

void append_tweet_payload(std::string& out, std::string_view tweet_json, std::span<const std::string> query_ids,
                          std::int64_t ingest_us) {
    out.append("{\"v\":");
    json_text::append_int(out, version);
    out.append(",\"type\":\"tweet\",\"qids\":[");
    for (std::size_t i = 0; i < query_ids.size(); ++i) {
        if (i) out.push_back(',');
        json_text::append_string(out, query_ids[i]);
    }
    out.append("],\"ingest_us\":");
    json_text::append_int(out, ingest_us);
    out.append(",\"tweet\":");
    out.append(tweet_json);
    out.push_back('}');
}

}  // namespace birdwatch::protocol
