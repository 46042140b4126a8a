// Values from outside go into log lines escaped: one event stays one parseable line.

#include "common/log.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

using namespace birdwatch;

TEST_CASE("log values: quotes, backslashes, control bytes and invalid UTF-8 are escaped, UTF-8 passes", "[hardening]") {
    CHECK(escape_log_value("plain") == R"("plain")");
    CHECK(escape_log_value(R"(say "hi" \o/)") == R"("say \"hi\" \\o/")");
    CHECK(escape_log_value("two\nlines\r\tand") == R"("two\nlines\r\tand")");
    CHECK(escape_log_value(std::string("nul\0bell\x07" "del\x7f", 13)) == R"("nul\x00bell\x07del\x7f")");
    CHECK(escape_log_value("é 東京 🐦") == "\"é 東京 🐦\"");
    CHECK(escape_log_value("bad \xff\xfe end") == R"("bad \xff\xfe end")");
    CHECK(escape_log_value("cut \xe6\x9d") == R"("cut \xe6\x9d")");      // a truncated sequence
    CHECK(escape_log_value("over \xc0\xaf") == R"("over \xc0\xaf")");    // overlong '/'
    CHECK(escape_log_value("surrogate \xed\xa0\x80") == R"("surrogate \xed\xa0\x80")");
    const std::string escaped = escape_log_value(std::string(10000, 'a'));
    CHECK(escaped.size() < max_log_value_bytes + 40);
    CHECK(escaped.find("(10000 bytes)") != std::string::npos);
    CHECK(fmt::format("payload={}", logfmt("a\"b")) == R"(payload="a\"b")");
}
