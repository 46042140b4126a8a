#include "fanout/client_protocol.h"

#include "common/json_text.h"

#include <nlohmann/json.hpp>

#include <charconv>
#include <limits>

namespace birdwatch::client {

namespace {

using json = nlohmann::json;

constexpr std::size_t max_id_digits = 19;  // INT64_MAX has 19

Error bad(std::string field, std::string message) { return {"bad_message", std::move(field), std::move(message), {}}; }

// Reads the fields of one message. Every accessor either yields a value of the
// right type and range or records the first error, naming the field.
class Fields {
public:
    explicit Fields(const json& message) : message_(message) {}

    const json* find(const char* name) const {
        const auto it = message_.find(name);
        return it == message_.end() || it->is_null() ? nullptr : &*it;
    }

    std::optional<std::string> string(const char* name, bool required, std::size_t max_bytes) {
        const json* value = find(name);
        if (!value) {
            if (required) fail(name, std::string("\"") + name + "\" is required (a string)");
            return std::nullopt;
        }
        if (!value->is_string()) return fail(name, std::string("\"") + name + "\" must be a string");
        const auto& text = value->get_ref<const std::string&>();
        if (text.size() > max_bytes)
            return fail(name, std::string("\"") + name + "\" is longer than " + std::to_string(max_bytes) + " bytes");
        return text;
    }

    // A tweet id: a decimal string. Absent or "" when not required: 0.
    std::optional<std::uint64_t> tweet_id(const char* name, bool required) {
        const json* value = find(name);
        if (!value || (value->is_string() && value->get_ref<const std::string&>().empty())) {
            if (required) return fail(name, std::string("\"") + name + "\" is required (a tweet id string)");
            return 0;
        }
        if (!value->is_string())
            return fail(name, std::string("\"") + name + "\" must be a tweet id as a decimal string");
        const auto id = parse_tweet_id(value->get_ref<const std::string&>());
        if (!id)
            return fail(name, std::string("\"") + name + "\" is not a tweet id (a decimal number from 1 to " +
                                  std::to_string(std::numeric_limits<std::int64_t>::max()) + ")");
        return id;
    }

    std::optional<std::string> query_id(const char* name) {
        auto qid = string(name, true, 64);
        if (qid && !is_query_id(*qid)) return fail(name, std::string("\"") + name + "\" is not a query id");
        return qid;
    }

    std::optional<std::size_t> size(const char* name, std::size_t fallback, std::size_t max) {
        const json* value = find(name);
        if (!value) return fallback;
        const std::string range = "an integer from 1 to " + std::to_string(max);
        if (!value->is_number_integer()) return fail(name, std::string("\"") + name + "\" must be " + range);
        if (value->is_number_unsigned()) {
            const auto n = value->get<std::uint64_t>();
            if (n >= 1 && n <= max) return static_cast<std::size_t>(n);
        }
        return fail(name, std::string("\"") + name + "\" must be " + range);
    }

    const std::optional<Error>& error() const { return error_; }

private:
    std::nullopt_t fail(const char* field, std::string message) {
        if (!error_) error_ = bad(field, std::move(message));
        return std::nullopt;
    }

    const json& message_;
    std::optional<Error> error_;
};

std::variant<Request, Error> parsed_query(std::string_view text, auto make) {
    QueryParse parse = parse_query(text);
    if (!parse.query) return Error{"bad_query", "query", parse.error.message, parse.error.position};
    return make(std::move(*parse.query));
}

}  // namespace

std::optional<std::uint64_t> parse_tweet_id(std::string_view text) {
    if (text.empty() || text.size() > max_id_digits) return std::nullopt;
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    if (value == 0 || value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
    return value;
}

bool is_query_id(std::string_view text) {
    if (text.size() != query_id_length || text[0] != 'q') return false;
    for (const char c : text.substr(1))
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

std::variant<Request, Error> parse_request(std::string_view text, const Limits& limits) {
    const json message = json::parse(text, nullptr, false);
    if (!message.is_object()) return bad("", "a message must be a JSON object");
    Fields fields(message);
    const auto type = fields.string("type", true, 32);
    if (!type) return *fields.error();

    if (*type == "subscribe") {
        const auto query = fields.string("query", true, 4 * max_query_chars);
        if (!query) return *fields.error();
        return parsed_query(*query, [](ParsedQuery q) -> Request { return Subscribe{std::move(q)}; });
    }
    if (*type == "unsubscribe") {
        auto qid = fields.query_id("qid");
        if (!qid) return *fields.error();
        return Unsubscribe{std::move(*qid)};
    }
    if (*type == "history") {
        const json* has_qid = fields.find("qid");
        auto qid = has_qid ? fields.query_id("qid") : std::nullopt;
        const auto query = has_qid ? std::nullopt : fields.string("query", false, 4 * max_query_chars);
        const auto size = fields.size("size", std::min(limits.default_page, limits.max_page), limits.max_page);
        const auto before = fields.tweet_id("before", false);
        if (fields.error()) return *fields.error();
        if (!qid && !query) return bad("qid", "history needs the \"qid\" of a subscription or a \"query\"");
        History history{qid ? std::move(*qid) : std::string(), std::nullopt, *size, *before};
        if (qid) return history;
        return parsed_query(*query, [&](ParsedQuery q) -> Request {
            history.qid = q.id;
            history.query = std::move(q);
            return std::move(history);
        });
    }
    if (*type == "resume") {
        auto qid = fields.query_id("qid");
        const auto since = fields.tweet_id("since_id", true);
        const auto before = fields.tweet_id("before_id", false);
        if (fields.error()) return *fields.error();
        return Resume{std::move(*qid), *since, *before};
    }
    if (*type == "get") {
        const auto id = fields.tweet_id("id", true);
        if (!id) return *fields.error();
        return Get{*id};
    }
    return Error{"unknown_type", "type",
                 "unknown message type \"" + *type + "\" (expected subscribe, unsubscribe, history, resume or get)", {}};
}

// ------------------------------------------------------------------ replies

namespace {

std::string id_or_null(std::uint64_t id) {
    return id == 0 ? std::string("null") : "\"" + std::to_string(id) + "\"";
}

std::string page_reply(std::string_view type, std::string_view qid, const std::vector<std::string>& tweets,
                       std::string_view cursor_name, std::uint64_t cursor) {
    std::size_t bytes = 96 + qid.size();
    for (const auto& t : tweets) bytes += t.size() + 1;
    std::string out;
    out.reserve(bytes);
    out = R"({"v":1,"type":)";
    json_text::append_string(out, type);
    out += R"(,"qid":)";
    json_text::append_string(out, qid);
    out += R"(,"tweets":[)";
    for (std::size_t i = 0; i < tweets.size(); ++i) {
        if (i) out += ',';
        out += tweets[i];
    }
    out += "],";
    json_text::append_string(out, cursor_name);
    out += ':';
    out += id_or_null(cursor);
    return out + "}";
}

}  // namespace

std::string error_reply(const Error& error) {
    std::string out = R"({"v":1,"type":"error","code":)";
    json_text::append_string(out, error.code);
    if (!error.field.empty()) {
        out += R"(,"field":)";
        json_text::append_string(out, error.field);
    }
    out += R"(,"message":)";
    json_text::append_string(out, error.message);
    if (error.position) {
        out += R"(,"position":)";
        json_text::append_int(out, static_cast<std::int64_t>(*error.position));
    }
    return out + "}";
}

std::string error_reply(std::string_view code, std::string_view message) {
    return error_reply(Error{std::string(code), {}, std::string(message), {}});
}

std::string query_reply(std::string_view type, std::string_view qid, const std::string* canonical) {
    std::string out = R"({"v":1,"type":)";
    json_text::append_string(out, type);
    out += R"(,"qid":)";
    json_text::append_string(out, qid);
    if (canonical) {
        out += R"(,"query":)";
        json_text::append_string(out, *canonical);
    }
    return out + "}";
}

std::string history_reply(std::string_view qid, const std::vector<std::string>& tweets, std::uint64_t next_before) {
    return page_reply("history", qid, tweets, "next_before", next_before);
}

std::string resumed_reply(std::string_view qid, const std::vector<std::string>& tweets, std::uint64_t next_since,
                          std::uint64_t before_id) {
    std::string out = page_reply("resumed", qid, tweets, "next_since", next_since);
    if (before_id != 0) {
        out.pop_back();  // the closing brace
        out += R"(,"before_id":")" + std::to_string(before_id) + "\"}";
    }
    return out;
}

std::string gap_notice(std::uint64_t after_id, std::uint64_t before_id) {
    return R"({"v":1,"type":"gap","after_id":")" + std::to_string(after_id) + R"(","before_id":")" +
           std::to_string(before_id) + "\"}";
}

std::string found_reply(std::uint64_t id, const std::optional<std::string>& tweet) {
    if (tweet) return R"({"v":1,"type":"found","tweet":)" + *tweet + "}";
    return R"({"v":1,"type":"not_found","id":")" + std::to_string(id) + "\"}";
}

}  // namespace birdwatch::client
