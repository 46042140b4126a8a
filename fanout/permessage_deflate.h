#pragma once
// permessage-deflate (RFC 7692), as this server speaks it. By default with no context
// takeover in either direction, so a message is compressed on its own: the hub
// compresses a batch of tweets once and sends the same bytes to every connection that
// gets it (as Nchan and Jetstream do); the price is the ratio a shared dictionary would
// add. A client that asks for a small server window (server_max_window_bits 9-14) may
// instead get a compressor of its own that keeps its context between messages: a
// better ratio, for its own CPU per message and a few KiB of state. No I/O; the
// shared-mode zlib streams are per thread.

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace birdwatch::websocket {

struct DeflateAgreement {
    std::string response;  // the Sec-WebSocket-Extensions value to answer with
    // 0: no context takeover, the shared batches; 9-14: the connection's own compressor
    // with this window, context kept between messages.
    int window_bits = 0;
};
// What to answer a client's offers with, or nullopt when none is one this server
// accepts. An offer limiting the server's window below 15 bits can only get a
// compressor of its own (a shared batch is compressed with one window): accepted when
// `own_compressor_allowed`, declined otherwise.
std::optional<DeflateAgreement> negotiate_permessage_deflate(std::string_view offers, bool own_compressor_allowed);

// One connection's compressor with context takeover: each message may refer back to
// the last 2^window_bits bytes it sent before. memLevel 1 keeps its state small.
class ContextDeflater {
public:
    explicit ContextDeflater(int window_bits);
    ~ContextDeflater();
    ContextDeflater(const ContextDeflater&) = delete;
    ContextDeflater& operator=(const ContextDeflater&) = delete;
    // Appends the message's compressed payload (without the final 00 00 ff ff) to `out`.
    void compress(std::string_view message, std::string& out);

private:
    struct Stream;
    std::unique_ptr<Stream> stream_;
};

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
