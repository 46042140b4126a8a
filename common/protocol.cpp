#include "common/protocol.h"

#include "common/json_text.h"

#include <simdjson.h>

#include <charconv>

namespace birdwatch::protocol {

namespace {

void append_position(std::string& out, const StreamPosition& position) {
    if (position.epoch == 0) return;
    out.append(",\"epoch\":");
    json_text::append_int(out, position.epoch);
    out.append(",\"seq\":");
    json_text::append_int(out, static_cast<std::int64_t>(position.seq));
}

constexpr std::string_view delete_head = R"({"v":1,"type":"delete","id":")";
constexpr std::string_view live_head = R"({"v":1,"type":"live","qid":")";

}  // namespace

void append_tweet_payload(std::string& out, std::string_view tweet_json, std::span<const std::string> query_ids,
                          std::int64_t ingest_us, const StreamPosition& position) {
    out.append("{\"v\":");
    json_text::append_int(out, version);
    out.append(",\"type\":\"tweet\",\"qids\":[");
    for (std::size_t i = 0; i < query_ids.size(); ++i) {
        if (i) out.push_back(',');
        json_text::append_string(out, query_ids[i]);
    }
    out.append("],\"ingest_us\":");
    json_text::append_int(out, ingest_us);
    append_position(out, position);
    out.append(",\"tweet\":");
    out.append(tweet_json);
    out.push_back('}');
}

void append_delete_payload(std::string& out, std::string_view tweet_id, const StreamPosition& position) {
    out.append(delete_head);
    out.append(tweet_id);  // decimal digits: checked by the caller, nothing to escape
    out.push_back('"');
    append_position(out, position);
    out.push_back('}');
}

void append_live_payload(std::string& out, std::string_view qid, std::uint64_t after_id,
                         const StreamPosition& position) {
    out.append(live_head);
    out.append(qid);  // 'q' and hex digits: nothing to escape
    out.append("\",\"after_id\":\"");
    out.append(std::to_string(after_id));
    out.push_back('"');
    append_position(out, position);
    out.push_back('}');
}

LiveMarker read_live_marker(std::string_view payload) {
    if (!payload.starts_with(live_head)) return {};
    payload.remove_prefix(live_head.size());
    const std::size_t qid_end = payload.find('"');
    if (qid_end == std::string_view::npos || qid_end == 0 || qid_end > 64) return {};
    LiveMarker marker{std::string(payload.substr(0, qid_end)), 0};
    payload.remove_prefix(qid_end);
    constexpr std::string_view after_key = R"(","after_id":")";
    if (!payload.starts_with(after_key)) return {};
    payload.remove_prefix(after_key.size());
    const auto [end, ec] = std::from_chars(payload.data(), payload.data() + payload.size(), marker.after_id);
    if (ec != std::errc{} || end == payload.data() + payload.size() || *end != '"') return {};
    return marker;
}

std::string_view deleted_id(std::string_view payload) {
    if (!payload.starts_with(delete_head)) return {};
    payload.remove_prefix(delete_head.size());
    const std::size_t end = payload.find('"');
    if (end == std::string_view::npos || end == 0 || end > 20) return {};
    const std::string_view id = payload.substr(0, end);
    for (const char c : id)
        if (c < '0' || c > '9') return {};
    return id;
}

std::uint64_t tweet_id(std::string_view payload) {
    constexpr std::string_view key = R"("tweet":{"id":")";
    const auto at = payload.find(key);
    if (at == std::string_view::npos) return 0;
    std::uint64_t id = 0;
    const char* begin = payload.data() + at + key.size();
    const auto [end, ec] = std::from_chars(begin, payload.data() + payload.size(), id);
    return ec == std::errc() && end < payload.data() + payload.size() && *end == '"' ? id : 0;
}

StreamPosition read_position(std::string_view payload) {
    // Our own fields come before "tweet"; nothing after it is looked at.
    const std::string_view head = payload.substr(0, payload.find("\"tweet\":"));
    const auto number = [&](std::string_view key, auto& value) {
        const auto at = head.find(key);
        if (at == std::string_view::npos) return false;
        const char* begin = head.data() + at + key.size();
        return std::from_chars(begin, head.data() + head.size(), value).ec == std::errc();
    };
    StreamPosition position;
    if (!number("\"epoch\":", position.epoch) || !number("\"seq\":", position.seq) || position.epoch <= 0) return {};
    return position;
}

namespace od = simdjson::ondemand;

struct PayloadReader::State {
    od::parser parser;
    std::string padded;
};

PayloadReader::PayloadReader() : state_(std::make_unique<State>()) {}
PayloadReader::~PayloadReader() = default;

std::vector<std::string> PayloadReader::qids(std::string_view payload) {
    std::vector<std::string> qids;
    std::string& padded = state_->padded;
    padded.reserve(payload.size() + simdjson::SIMDJSON_PADDING);
    padded.assign(payload);
    od::document doc;
    od::object root;
    if (state_->parser.iterate(padded.data(), padded.size(), padded.capacity()).get(doc) ||
        doc.get_object().get(root))
        return {};
    for (auto field : root) {
        std::string_view key;
        if (field.unescaped_key().get(key)) return {};
        if (key != "qids") continue;
        od::array ids;
        if (field.value().get_array().get(ids)) return {};
        for (auto id : ids) {
            std::string_view text;
            if (id.get_string().get(text)) return {};
            qids.emplace_back(text);
        }
        return qids;
    }
    return {};
}

}  // namespace birdwatch::protocol
