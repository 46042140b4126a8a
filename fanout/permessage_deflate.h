#pragma once
// permessage-deflate (RFC 7692), as this server speaks it: no context takeover in
// either direction, so a message is compressed on its own. That lets the hub compress
// a batch of tweets once and send the same bytes to every connection that gets it
// (as Nchan and Jetstream do); the price is the ratio a shared dictionary would add.
// No I/O; the zlib streams are per thread.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace birdwatch::websocket {

// The Sec-WebSocket-Extensions value to answer a client's offers with, or nullopt
// when none of them is a permessage-deflate this server can accept (one that limits
// the server's window below 15 bits: a batch shared by many clients is compressed
// with one window).
std::optional<std::string> accept_permessage_deflate(std::string_view offers);

// A message's compressed payload: raw DEFLATE, flushed to a byte boundary, without
// the final 00 00 ff ff (RFC 7692 7.2.1). Sent in a frame with RSV1 set.
std::string deflate_message(std::string_view message);

// A message a client compressed. Inflation stops as soon as it passes `max_bytes`
// (a bomb is stopped at the limit, not after).
struct Inflated {
    enum class Status { ok, too_big, corrupt };
    std::string message;
    Status status = Status::ok;
};
Inflated inflate_message(std::string_view compressed, std::size_t max_bytes);

}  // namespace birdwatch::websocket
