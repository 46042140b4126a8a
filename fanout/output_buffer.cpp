#include "fanout/output_buffer.h"

#include <climits>

namespace birdwatch {

namespace {
// Waiting replies leave in one WebSocket message of up to this many, '\n'-separated
// (docs/protocol.md); tweet batches in one write of up to this many bytes.
constexpr std::size_t max_reply_messages = 256;
constexpr std::size_t max_write_bytes = 256 * 1024;
constexpr char message_separator = '\n';
}  // namespace

OutputBuffer::OutputBuffer(std::size_t cap) : cap_(cap), high_(cap / 2), low_(cap / 4) {}

bool OutputBuffer::make_room(std::size_t bytes) {
    while (!tweets_.empty() && buffered_ + bytes > cap_) {
        buffered_ -= tweets_.front()->message_bytes();
        note_dropped(*tweets_.front());
        tweets_.pop_front();
    }
    return buffered_ + bytes <= cap_;
}

void OutputBuffer::note_dropped(const Batch& batch) {
    dropped_ += batch.messages();
    if (!batch.last_id()) return;  // a broadcast (stats), not tweets
    dropped_ids_.first = dropped_ids_.first ? std::min(dropped_ids_.first, batch.first_id()) : batch.first_id();
    dropped_ids_.last = std::max(dropped_ids_.last, batch.last_id());
}

void OutputBuffer::push_tweets(const BatchPtr& batch) {
    if (!final_.empty() || final_sent_) return;
    if (!make_room(batch->message_bytes())) {
        note_dropped(*batch);  // not even room for this one
        return;
    }
    buffered_ += batch->message_bytes();
    tweets_.push_back(batch);
    if (dropped_ids_.last) dropped_ids_.next_kept = tweets_.front()->first_id();
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
    for (const auto& b : tweets_) buffered_ -= b->message_bytes();
    replies_.clear();
    tweets_.clear();
}

void OutputBuffer::discard() {
    control_.clear();
    replies_.clear();
    tweets_.clear();
    final_.clear();
    std::string().swap(owned_);
    std::vector<Frame>().swap(replies_writing_);
    std::vector<BatchPtr>().swap(batches_writing_);
    std::string().swap(own_compressed_);
    own_deflater_.reset();
    writing_messages_ = writing_bytes_ = written_ = total_ = buffered_ = 0;
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
    } else if (!replies_.empty()) {
        std::size_t bytes = 0;  // the message: the replies and a separator between each two
        while (!replies_.empty() && replies_writing_.size() < max_reply_messages &&
               (replies_writing_.empty() || bytes + 1 + replies_.front()->size() <= max_write_bytes)) {
            bytes += replies_.front()->size() + (replies_writing_.empty() ? 0 : 1);
            writing_bytes_ += replies_.front()->size();
            replies_writing_.push_back(std::move(replies_.front()));
            replies_.pop_front();
        }
        writing_messages_ = replies_writing_.size();
        header_ = websocket::frame_header(websocket::Opcode::text, bytes);
        total_ = header_.size + bytes;
    } else if (!tweets_.empty()) {
        total_ = 0;
        // With a compressor of its own, sized by the plain frames and compressed below.
        const bool shared_compressed = compressed_ && !own_deflater_;
        while (!tweets_.empty() && batches_writing_.size() < IOV_MAX &&
               (batches_writing_.empty() || total_ + tweets_.front()->wire(shared_compressed).size() <= max_write_bytes)) {
            total_ += tweets_.front()->wire(shared_compressed).size();
            writing_messages_ += tweets_.front()->messages();
            writing_bytes_ += tweets_.front()->message_bytes();
            batches_writing_.push_back(std::move(tweets_.front()));
            tweets_.pop_front();
        }
        if (own_deflater_) {
            for (const auto& batch : batches_writing_) {
                std::string deflated;
                own_deflater_->compress(batch->text(), deflated);
                own_compressed_ += websocket::frame_header(websocket::Opcode::text, deflated.size(), true).view();
                own_compressed_ += deflated;
            }
            total_ = own_compressed_.size();
        }
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
    if (!replies_writing_.empty()) {
        add(header_.bytes.data(), header_.size);
        for (std::size_t i = 0; i < replies_writing_.size() && iov.size() + 2 <= IOV_MAX; ++i) {
            if (i > 0) add(&message_separator, 1);
            add(replies_writing_[i]->data(), replies_writing_[i]->size());
        }
        return;
    }
    if (own_deflater_) {
        add(own_compressed_.data(), own_compressed_.size());
        return;
    }
    for (const auto& batch : batches_writing_) {
        const std::string_view wire = batch->wire(compressed_);
        add(wire.data(), wire.size());
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
    done.messages = writing_messages_;
    done.bytes = writing_bytes_;
    buffered_ -= writing_bytes_;
    writing_messages_ = writing_bytes_ = 0;
    replies_writing_.clear();
    batches_writing_.clear();
    own_compressed_.clear();
    if (own_compressed_.capacity() > 64 * 1024) std::string().swap(own_compressed_);
    if (replies_writing_.capacity() > 16) std::vector<Frame>().swap(replies_writing_);
    if (batches_writing_.capacity() > 16) std::vector<BatchPtr>().swap(batches_writing_);
    return done;
}

}  // namespace birdwatch
