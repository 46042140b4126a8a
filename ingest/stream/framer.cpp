#include "ingest/stream/framer.h"

#include <charconv>

namespace birdwatch {

Framer::Framer(Mode mode, std::size_t max_message_bytes, Events events)
    : mode_(mode), max_(max_message_bytes), events_(std::move(events)) {}

void Framer::reset() {
    buffer_.clear();
    skipping_ = 0;
    body_remaining_ = 0;
    in_body_ = false;
    skipping_body_ = false;
    skipping_length_line_ = false;
}

void Framer::feed(std::string_view chunk) {
    if (mode_ == Mode::newline)
        feed_newline(chunk);
    else
        feed_delimited(chunk);
}

void Framer::end_line(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty())
        events_.keep_alive();
    else
        events_.message(line);
}

void Framer::feed_newline(std::string_view chunk) {
    while (!chunk.empty()) {
        const std::size_t newline = chunk.find('\n');
        const std::string_view part = chunk.substr(0, newline);
        if (skipping_) {
            skipping_ += part.size();
        } else if (buffer_.size() + part.size() > max_ + 1) {  // +1: the '\r' is not part of the message
            skipping_ = buffer_.size() + part.size();
            buffer_.clear();
        } else if (newline != std::string_view::npos && buffer_.empty()) {
            end_line(part);  // the common case: a whole line inside one chunk, no copy
        } else {
            buffer_.append(part);
        }
        if (newline == std::string_view::npos) return;
        if (skipping_) {
            events_.oversized(skipping_);
            skipping_ = 0;
        } else if (!buffer_.empty()) {
            end_line(buffer_);
            buffer_.clear();
        }
        chunk.remove_prefix(newline + 1);
    }
}

void Framer::feed_delimited(std::string_view chunk) {
    while (!chunk.empty()) {
        if (in_body_) {
            const std::size_t take = std::min(body_remaining_, chunk.size());
            if (!skipping_body_) buffer_.append(chunk.substr(0, take));
            body_remaining_ -= take;
            chunk.remove_prefix(take);
            if (body_remaining_ == 0) {
                in_body_ = false;
                if (skipping_body_) {
                    skipping_body_ = false;
                } else {
                    // The body is one JSON message ending in "\r\n"; strip the line end.
                    std::string_view body = buffer_;
                    while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.remove_suffix(1);
                    if (body.empty())
                        events_.keep_alive();
                    else
                        events_.message(body);
                    buffer_.clear();
                }
            }
            continue;
        }
        const std::size_t newline = chunk.find('\n');
        const std::string_view part = chunk.substr(0, newline);
        if (skipping_length_line_) {
        } else if (buffer_.size() + part.size() > 32) {  // a length line is a few digits: this is not one
            events_.malformed("length line too long");
            buffer_.clear();
            skipping_length_line_ = true;  // to its end, however it is chunked: its tail is no length
        } else {
            buffer_.append(part);
        }
        if (newline == std::string_view::npos) return;
        chunk.remove_prefix(newline + 1);
        if (skipping_length_line_) {
            skipping_length_line_ = false;
            continue;
        }
        std::string_view line = buffer_;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) {
            events_.keep_alive();
            buffer_.clear();
            continue;
        }
        std::size_t length = 0;
        const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), length);
        if (ec != std::errc{} || end != line.data() + line.size()) {
            events_.malformed("length line is not a number");
            buffer_.clear();
            continue;
        }
        buffer_.clear();
        in_body_ = true;
        body_remaining_ = length;
        skipping_body_ = length > max_ + 2;
        if (skipping_body_) events_.oversized(length);
    }
}

}  // namespace birdwatch
