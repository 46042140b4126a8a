// The client protocol handler without sockets: every message type, every field
// missing, mistyped, out of range or huge, gets an error that names the field.

#include "fanout/client_protocol.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace birdwatch;
using namespace birdwatch::client;
using nlohmann::json;

namespace {

const Limits limits{100, 20};
const std::string qid = parse_query("cats").query->id;

Error error_of(const std::string& text) {
    auto parsed = parse_request(text, limits);
    INFO(text);
    REQUIRE(std::holds_alternative<Error>(parsed));
    return std::get<Error>(parsed);
}

Request request_of(const std::string& text) {
    auto parsed = parse_request(text, limits);
    INFO(text << " -> " << (std::holds_alternative<Error>(parsed) ? std::get<Error>(parsed).message : ""));
    REQUIRE(std::holds_alternative<Request>(parsed));
    return std::get<Request>(parsed);
}

// The message with `field` replaced by `value` (or removed when value is null).
std::string with(json message, const std::string& field, const json& value) {
    if (value.is_null())
        message.erase(field);
    else
        message[field] = value;
    return message.dump();
}

}  // namespace

TEST_CASE("tweet ids: positive decimal 63-bit integers and nothing else", "[hardening]") {
    CHECK(parse_tweet_id("1") == 1U);
    CHECK(parse_tweet_id("1500000000000000465") == 1500000000000000465ULL);
    CHECK(parse_tweet_id("9223372036854775807") == 9223372036854775807ULL);
    for (const char* bad : {"", "0", "abc", "-5", "+5", " 5", "5 ", "1e9", "0x10", "9223372036854775808",
                            "18446744073709551615", "18446744073709551616", "99999999999999999999999"})
        CHECK_FALSE(parse_tweet_id(bad));
    CHECK_FALSE(parse_tweet_id(std::string(10000, '7')));
}

TEST_CASE("query ids are what parse_query makes, nothing else", "[hardening]") {
    CHECK(is_query_id(qid));
    CHECK_FALSE(is_query_id("qnope"));
    CHECK_FALSE(is_query_id("Q" + qid.substr(1)));
    CHECK_FALSE(is_query_id(qid + "0"));
    CHECK_FALSE(is_query_id(qid.substr(0, 32) + "g"));
}

TEST_CASE("valid messages become typed requests with integer ids and sizes within limits", "[hardening]") {
    const Request subscribe = request_of(R"({"type":"subscribe","query":"Dogs  cats","extra":[1,{"x":2}]})");
    REQUIRE(std::holds_alternative<Subscribe>(subscribe));
    CHECK(std::get<Subscribe>(subscribe).query.canonical == "cats dogs");

    const Request history = request_of(R"({"type":"history","qid":")" + qid + R"(","size":100,"before":"42"})");
    REQUIRE(std::holds_alternative<History>(history));
    CHECK(std::get<History>(history).qid == qid);
    CHECK(std::get<History>(history).size == 100);
    CHECK(std::get<History>(history).before == 42);

    const Request by_query = request_of(R"({"type":"history","query":"cats"})");
    REQUIRE(std::holds_alternative<History>(by_query));
    CHECK(std::get<History>(by_query).qid == qid);
    CHECK(std::get<History>(by_query).size == 20);
    CHECK(std::get<History>(by_query).before == 0);
    CHECK(std::get<History>(request_of(R"({"type":"history","query":"cats","before":null})")).before == 0);
    CHECK(std::get<History>(request_of(R"({"type":"history","query":"cats","before":""})")).before == 0);

    const Request resume = request_of(R"({"type":"resume","qid":")" + qid + R"(","since_id":"1500000000000000465"})");
    REQUIRE(std::holds_alternative<Resume>(resume));
    CHECK(std::get<Resume>(resume).since_id == 1500000000000000465ULL);
    CHECK(std::get<Resume>(resume).before_id == 0);
    const Request over_gap =
        request_of(R"({"type":"resume","qid":")" + qid + R"(","since_id":"5","before_id":"1500000000000000465"})");
    CHECK(std::get<Resume>(over_gap).before_id == 1500000000000000465ULL);

    CHECK(std::get<Get>(request_of(R"({"type":"get","id":"7"})")).id == 7);
    CHECK(std::get<Unsubscribe>(request_of(R"({"type":"unsubscribe","qid":")" + qid + R"("})")).qid == qid);
}

TEST_CASE("every field of every message: missing, mistyped, out of range or huge gets an error naming it",
          "[hardening]") {
    const std::string huge(10 * 1024, 'x');
    const json nested = json::parse("[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]");
    struct Case {
        json message;
        std::string field;
        std::vector<json> bad;  // each value makes the message invalid; null: the field is missing
    };
    const std::vector<json> not_a_string = {42, -1, 1.5, true, json::array(), json::object(), nested};
    auto plus = [](std::vector<json> a, std::vector<json> b) {
        a.insert(a.end(), b.begin(), b.end());
        return a;
    };
    const std::vector<json> bad_ids = {"abc", "-5", "18446744073709551616", "9223372036854775808", "0", "1.5", huge};
    const std::vector<json> bad_qids = {"qnope", "", huge, qid + "x"};
    const std::vector<Case> cases = {
        {{{"type", "subscribe"}, {"query", "cats"}}, "type", plus({nullptr, "dance", huge, ""}, not_a_string)},
        {{{"type", "subscribe"}, {"query", "cats"}}, "query", plus({nullptr, huge, "cats OR", ""}, not_a_string)},
        {{{"type", "unsubscribe"}, {"qid", qid}}, "qid", plus(plus({nullptr}, bad_qids), not_a_string)},
        {{{"type", "history"}, {"qid", qid}}, "qid", plus(bad_qids, not_a_string)},
        {{{"type", "history"}, {"query", "cats"}}, "query", plus({huge, "cats OR"}, not_a_string)},
        {{{"type", "history"}, {"qid", qid}}, "size",
         {-1, 0, 101, 1000000000, 1.5, "20", true, json::array(), nested, 18446744073709551615ULL}},
        {{{"type", "history"}, {"qid", qid}}, "before", plus(bad_ids, not_a_string)},
        {{{"type", "resume"}, {"qid", qid}, {"since_id", "1"}}, "qid", plus(plus({nullptr}, bad_qids), not_a_string)},
        {{{"type", "resume"}, {"qid", qid}, {"since_id", "1"}}, "since_id",
         plus(plus({nullptr, ""}, bad_ids), not_a_string)},
        {{{"type", "resume"}, {"qid", qid}, {"since_id", "1"}}, "before_id", plus(bad_ids, not_a_string)},
        {{{"type", "get"}, {"id", "1"}}, "id", plus(plus({nullptr, ""}, bad_ids), not_a_string)},
    };
    for (const auto& c : cases) {
        (void)request_of(c.message.dump());  // the unchanged message is valid
        for (const json& value : c.bad) {
            const std::string text = with(c.message, c.field, value);
            const Error e = error_of(text);
            INFO(text.substr(0, 200) << " -> " << e.code << ": " << e.message);
            CHECK(e.field == c.field);
            CHECK_FALSE(e.message.empty());
            CHECK(e.message.size() < 300);  // huge input is not echoed back
        }
    }
    // A history message needs one of its two ways of naming the query.
    CHECK(error_of(R"({"type":"history"})").field == "qid");
}

TEST_CASE("messages that are not JSON objects are errors about the message as a whole", "[hardening]") {
    for (const std::string& text : std::vector<std::string>{"", "not json", "[1,2]", "42", "\"subscribe\"", "null", "{\"type\":",
                                   std::string(20000, '['), std::string("{\"type\":\"subscribe\",\"query\":\"\xff\"}")}) {
        const Error e = error_of(text);
        CHECK(e.code == "bad_message");
        CHECK(e.field.empty());
    }
}

TEST_CASE("replies: errors name their field, pages carry a cursor or null", "[hardening]") {
    const json error = json::parse(error_reply({"bad_message", "since_id", "\"since_id\" is not a tweet id", {}}));
    CHECK(error == json{{"v", 1}, {"type", "error"}, {"code", "bad_message"}, {"field", "since_id"},
                        {"message", "\"since_id\" is not a tweet id"}});
    CHECK_FALSE(json::parse(error_reply("busy", "try again")).contains("field"));
    const json history = json::parse(history_reply(qid, {R"({"id":"5"})"}, 5));
    CHECK(history["next_before"] == "5");
    CHECK(history["tweets"][0]["id"] == "5");
    CHECK(json::parse(history_reply(qid, {}, 0))["next_before"].is_null());
    CHECK(json::parse(resumed_reply(qid, {}, 9))["next_since"] == "9");
    CHECK(json::parse(resumed_reply(qid, {}, 0))["next_since"].is_null());
    CHECK(!json::parse(resumed_reply(qid, {}, 0)).contains("before_id"));
    CHECK(json::parse(resumed_reply(qid, {"{\"id\":\"6\"}"}, 6, 90))["before_id"] == "90");
    const json gap = json::parse(gap_notice(12, 90));
    CHECK(gap["type"] == "gap");
    CHECK(gap["after_id"] == "12");
    CHECK(gap["before_id"] == "90");
    CHECK(json::parse(found_reply(7, std::nullopt)) == json{{"v", 1}, {"type", "not_found"}, {"id", "7"}});
}
