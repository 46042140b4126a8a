#include "fanout/frame.h"

#include "fanout/permessage_deflate.h"
#include "fanout/websocket_codec.h"

#include <algorithm>

namespace birdwatch {

void Batch::Builder::add(std::string_view message, std::uint64_t tweet_id) {
    if (messages_++) text_ += '\n';
    text_ += message;
    message_bytes_ += message.size();
    if (tweet_id) {
        first_id_ = first_id_ ? std::min(first_id_, tweet_id) : tweet_id;
        last_id_ = std::max(last_id_, tweet_id);
    }
}

std::shared_ptr<const Batch> Batch::Builder::finish() {
    auto batch = std::make_shared<Batch>();
    const auto header = websocket::frame_header(websocket::Opcode::text, text_.size());
    batch->header_size_ = header.size;
    batch->plain_ = header.view();
    batch->plain_ += text_;
    batch->messages_ = messages_;
    batch->message_bytes_ = message_bytes_;
    batch->first_id_ = first_id_;
    batch->last_id_ = last_id_;
    text_.clear();
    messages_ = message_bytes_ = 0;
    first_id_ = last_id_ = 0;
    return batch;
}

std::string_view Batch::wire(bool compressed) const {
    if (!compressed) return plain_;
    if (compressed_.empty()) {
        const std::string deflated = websocket::deflate_message(text());
        compressed_ = websocket::frame_header(websocket::Opcode::text, deflated.size(), true).view();
        compressed_ += deflated;
    }
    return compressed_;
}

BatchPtr single_batch(std::string_view message, std::uint64_t tweet_id) {
    Batch::Builder builder;
    builder.add(message, tweet_id);
    return builder.finish();
}

}  // namespace birdwatch
