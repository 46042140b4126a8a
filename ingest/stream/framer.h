#pragma once
// Reassembles stream messages from network chunks that may split a message at any
// byte or carry several. Two framings, as Twitter/X documents them:
//   newline:   messages end with "\r\n" (a tweet's text may contain "\n", never "\r"
//              unescaped, since it is JSON); blank lines are keep-alives.
//   delimited: (v1.1 delimited=length) a decimal byte count on its own line, then
//              exactly that many bytes; blank lines are keep-alives.
// A message longer than the limit is skipped (its bytes are never buffered) and
// reported, and framing resumes with the next message.

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace birdwatch {

class Framer {
public:
    enum class Mode { newline, delimited };
    struct Events {
        std::function<void(std::string_view message)> message;
        std::function<void()> keep_alive;
        std::function<void(std::size_t bytes)> oversized;  // at least this many bytes were skipped
        std::function<void(std::string_view why)> malformed;  // a delimited length line that is not a number
    };

    Framer(Mode mode, std::size_t max_message_bytes, Events events);

    void feed(std::string_view chunk);
    // Forgets a partial message (after a disconnect: the next connection starts afresh).
    void reset();
    std::size_t buffered() const { return buffer_.size(); }

private:
    void feed_newline(std::string_view chunk);
    void feed_delimited(std::string_view chunk);
    void end_line(std::string_view line);

    const Mode mode_;
    const std::size_t max_;
    const Events events_;
    std::string buffer_;
    std::size_t skipping_ = 0;       // newline mode: bytes of an oversized line dropped so far
    std::size_t body_remaining_ = 0; // delimited mode: bytes of the current message still expected
    bool in_body_ = false;
    bool skipping_body_ = false;
    bool skipping_length_line_ = false;  // delimited mode: inside a line too long to be a length
};

}  // namespace birdwatch
