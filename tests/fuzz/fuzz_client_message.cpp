// Client WebSocket messages through the fanout's protocol handler: every input is a
// typed request or an error naming what is wrong; an error never echoes huge input.

#include "fanout/client_protocol.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <variant>

using namespace birdwatch;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto result = client::parse_request(text, client::Limits{});
    if (const auto* error = std::get_if<client::Error>(&result)) {
        if (error->code.empty() || error->message.size() > 2048) std::abort();
    }
    (void)client::parse_tweet_id(text);
    (void)client::is_query_id(text);
    return 0;
}
