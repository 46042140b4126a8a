#include "fanout/output_buffer.h"

#include "common/protocol.h"

#include <climits>

namespace birdwatch {

namespace {
// Queued messages leave in one WebSocket message of up to this many, '\n'-separated
// (docs/protocol.md): one write for many tweets when a client falls behind.
constexpr std::size_t max_batch_messages = 256;
constexpr std::size_t max_batch_bytes = 256 * 1024;
constexpr char message_separator = '\n';
}  // namespace

OutputBuffer::OutputBuffer(std::size_t cap) : cap_(cap), high_(cap / 2), low_(cap / 4) {}

bool OutputBuffer::make_room(std::size_t bytes) {
    while (!tweets_.empty() && buffered_ + bytes > cap_) {
        buffered_ -= tweets_.front()->size();
        note_dropped(tweets_.front());
        tweets_.pop_front();
    }
    return buffered_ + bytes <= cap_;
}

void OutputBuffer::note_dropped(const Frame& frame) {
    ++dropped_;
    const std::uint64_t id = protocol::tweet_id(*frame);
    if (!id) return;  // a broadcast (stats), not a tweet
    dropped_ids_.first = dropped_ids_.first ? std::min(dropped_ids_.first, id) : id;
    dropped_ids_.last = std::max(dropped_ids_.last, id);
}

void OutputBuffer::push_tweet(const Frame& frame) {
    if (!final_.empty() || final_sent_) return;
    if (!make_room(frame->size())) {
        note_dropped(frame);  // not even room for this one
        return;
    }
    buffered_ += frame->size();
    tweets_.push_back(frame);
    if (dropped_ids_.last) dropped_ids_.next_kept = protocol::tweet_id(*tweets_.front());
}

bool OutputBuffer::push_reply(const Frame& frame) {
    if (!final_.empty() || final_sent_) return true;  // closing: replies are no longer sent
    if (!make_room(frame->size())) return false;
    buffered_ += frame->size();
    replies_.push_back(frame);
    return true;
}

bool OutputBuffer::push_control(std::string_view bytes) {
    if (final_sent_) return true;
    if (!make_room(bytes.size())) return false;
    buffered_ += bytes.size();
    control_.append(bytes);
    return true;
}

void OutputBuffer::set_final(std::string bytes) {
    if (!final_.empty() || final_sent_ || writing_final_) return;
    buffered_ += bytes.size();
    final_ = std::move(bytes);
}

void OutputBuffer::drop_pending() {
    for (const auto& f : replies_) buffered_ -= f->size();
    for (const auto& f : tweets_) buffered_ -= f->size();
    replies_.clear();
    tweets_.clear();
}

void OutputBuffer::discard() {
    control_.clear();
    replies_.clear();
    tweets_.clear();
    final_.clear();
    std::string().swap(owned_);
    std::vector<Frame>().swap(batch_);
    batch_bytes_ = written_ = total_ = buffered_ = 0;
    writing_ = writing_final_ = false;
    final_sent_ = true;  // nothing more leaves
}

bool OutputBuffer::start_write() {
    if (final_sent_ || writing_final_) return false;
    written_ = 0;
    if (!control_.empty()) {
        owned_.swap(control_);
        control_.clear();
        total_ = owned_.size();
    } else if (!replies_.empty() || !tweets_.empty()) {
        std::size_t bytes = 0;  // the message: the frames and a separator between each two
        auto take = [&](std::deque<Frame>& from) {
            while (!from.empty() && batch_.size() < max_batch_messages &&
                   (batch_.empty() || bytes + 1 + from.front()->size() <= max_batch_bytes)) {
                bytes += from.front()->size() + (batch_.empty() ? 0 : 1);
                batch_bytes_ += from.front()->size();
                batch_.push_back(std::move(from.front()));
                from.pop_front();
            }
        };
        take(replies_);
        take(tweets_);
        header_ = websocket::frame_header(websocket::Opcode::text, bytes);
        total_ = header_.size + bytes;
    } else if (!final_.empty()) {
        owned_.swap(final_);
        final_.clear();
        writing_final_ = true;
        total_ = owned_.size();
    } else {
        return false;
    }
    writing_ = true;
    return true;
}

void OutputBuffer::next_write(std::vector<iovec>& iov) {
    if (!writing_ && !start_write()) return;
    std::size_t skip = written_;
    auto add = [&](const char* data, std::size_t size) {
        if (skip >= size) {
            skip -= size;
            return;
        }
        iov.push_back({const_cast<char*>(data) + skip, size - skip});
        skip = 0;
    };
    if (!owned_.empty()) {
        add(owned_.data(), owned_.size());
        return;
    }
    add(header_.bytes.data(), header_.size);
    for (std::size_t i = 0; i < batch_.size() && iov.size() + 2 <= IOV_MAX; ++i) {
        if (i > 0) add(&message_separator, 1);
        add(batch_[i]->data(), batch_[i]->size());
    }
}

OutputBuffer::Written OutputBuffer::consume(std::size_t n) {
    Written done;
    written_ += n;
    if (!writing_ || written_ < total_) return done;
    writing_ = false;
    if (!owned_.empty()) {
        buffered_ -= owned_.size();
        owned_.clear();
        if (owned_.capacity() > 4096) std::string().swap(owned_);
        if (writing_final_) {
            writing_final_ = false;
            final_sent_ = true;
            done.final_done = true;
        }
        return done;
    }
    done.messages = batch_.size();
    done.bytes = batch_bytes_;
    buffered_ -= batch_bytes_;
    batch_bytes_ = 0;
    batch_.clear();
    if (batch_.capacity() > 16) std::vector<Frame>().swap(batch_);
    return done;
}

}  // namespace birdwatch
