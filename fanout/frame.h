#pragma once
// What connections send, encoded once and shared by every connection it goes to.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace birdwatch {

// One message (a reply, a notice): framed by each connection's output buffer.
using Frame = std::shared_ptr<const std::string>;

// Tweets (or a broadcast) for connections: one WebSocket text frame holding one or
// more messages separated by '\n', built once per loop and shared by every connection
// of that loop that gets the same messages -- a loop's turn builds one per query
// (uWebSockets' pre-encoded broadcast). Its compressed form (permessage-deflate) is
// made the first time a connection that negotiated it asks, then shared too. Used
// only on the loop that built it.
class Batch {
public:
    class Builder {
    public:
        void add(std::string_view message, std::uint64_t tweet_id);  // tweet_id 0: not a tweet
        std::size_t messages() const { return messages_; }
        // A batch holds at most 256 messages or 256 KiB: time to finish() this one.
        bool full() const { return messages_ >= 256 || text_.size() >= 256 * 1024; }
        // The batch of what was added; the builder is empty again.
        std::shared_ptr<const Batch> finish();

    private:
        std::string text_;
        std::size_t messages_ = 0, message_bytes_ = 0;
        std::uint64_t first_id_ = 0, last_id_ = 0;
    };

    // The whole frame as it goes on the wire, compressed or not.
    std::string_view wire(bool compressed) const;
    // The messages alone, '\n'-separated, without the frame header.
    std::string_view text() const { return std::string_view(plain_).substr(header_size_); }
    std::size_t messages() const { return messages_; }
    std::size_t message_bytes() const { return message_bytes_; }  // the messages, without separators
    // The lowest and highest tweet id among its messages (0, 0: none is a tweet).
    std::uint64_t first_id() const { return first_id_; }
    std::uint64_t last_id() const { return last_id_; }

private:
    std::string plain_;                 // header + messages
    std::size_t header_size_ = 0;
    mutable std::string compressed_;    // header + DEFLATE, made on first use
    std::size_t messages_ = 0, message_bytes_ = 0;
    std::uint64_t first_id_ = 0, last_id_ = 0;
};

using BatchPtr = std::shared_ptr<const Batch>;

// A batch of one message.
BatchPtr single_batch(std::string_view message, std::uint64_t tweet_id = 0);

}  // namespace birdwatch
