#pragma once
// Writing JSON text by hand on the hot path: appending into one reused string
// is several times faster than building a DOM and dumping it.

#include <cstdint>
#include <string>
#include <string_view>

namespace birdwatch::json_text {

// Appends `value` as a quoted JSON string. `value` must be valid UTF-8.
void append_string(std::string& out, std::string_view value);

void append_int(std::string& out, std::int64_t value);

}  // namespace birdwatch::json_text
