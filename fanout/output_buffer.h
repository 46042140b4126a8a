#pragma once
// Everything one connection sends leaves through one OutputBuffer: the handshake
// answer, pongs and pings, replies, tweets and the final close frame (or HTTP
// refusal). It holds no socket; the connection asks it for the next bytes as
// iovecs and tells it how many were written.
//
// Bounded, with watermarks (as Envoy's watermark buffers, uWebSockets'
// maxBackpressure): above the high watermark the connection stops reading, so a
// client that does not read cannot make it produce more (pongs, replies); below the
// low one it reads again. Nothing is held beyond the cap: tweets give way (the
// oldest not yet started are dropped), while control frames and replies are never
// dropped: one that does not fit means the client is past saving.
//
// Write order: control bytes first, then the waiting replies as one WebSocket
// message, then the waiting tweet batches (each already a frame, shared with other
// connections; compressed when this connection negotiated permessage-deflate), then,
// once all else is out, the final bytes.

#include "fanout/frame.h"
#include "fanout/permessage_deflate.h"
#include "fanout/websocket_codec.h"

#include <sys/uio.h>

#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace birdwatch {

class OutputBuffer {
public:
    // high watermark = cap / 2, low = cap / 4.
    explicit OutputBuffer(std::size_t cap);

    // Tweet batches go out compressed from now on (permessage-deflate was negotiated):
    // each batch's shared compressed frame, or, given a compressor of the connection's
    // own, compressed by it when its write begins (so dropped batches cost nothing).
    void send_compressed(std::unique_ptr<websocket::ContextDeflater> own = nullptr) {
        compressed_ = true;
        own_deflater_ = std::move(own);
    }

    // Each push first drops the oldest waiting tweets if that makes room (see dropped()).
    // Tweets or a broadcast: queued unless even dropping every older batch leaves no room.
    void push_tweets(const BatchPtr& batch);
    // A reply to the client; false (nothing queued) when it does not fit under the cap.
    bool push_reply(const Frame& frame);
    // Control frame bytes (pong, ping) or the handshake answer; false when over the cap.
    bool push_control(std::string_view bytes);
    // Messages dropped (the pushed batch's included, when it did not fit) since the last call.
    std::size_t take_dropped() { return std::exchange(dropped_, 0); }
    // The lowest and highest tweet id among them (0, 0 when none carried an id), and the
    // id of the oldest tweet still waiting after the latest drop (0: none), where the gap ends.
    struct DroppedIds {
        std::uint64_t first = 0, last = 0, next_kept = 0;
    };
    DroppedIds take_dropped_ids() { return std::exchange(dropped_ids_, {}); }
    // The last bytes this connection sends; nothing queued after them is written.
    void set_final(std::string bytes);
    // Drops replies and tweets not yet started (a batch being written completes).
    void drop_pending();
    // Drops everything, the write in progress included (the connection is gone).
    void discard();

    // Appends the iovecs of what is left of the current write (starting the next one
    // if none is in progress); empty when there is nothing to write.
    void next_write(std::vector<iovec>& iov);
    struct Written {
        std::size_t messages = 0, bytes = 0;  // of replies and batches that completed (message bytes)
        bool final_done = false;              // the final bytes are out
    };
    // `n` bytes of the current write went out.
    Written consume(std::size_t n);

    std::size_t buffered() const { return buffered_; }
    bool above_high() const { return buffered_ > high_; }
    bool below_low() const { return buffered_ <= low_; }
    bool final_sent() const { return final_sent_; }
    bool idle() const { return !writing_ && control_.empty() && replies_.empty() && tweets_.empty() && final_.empty(); }

private:
    bool start_write();
    // Drops the oldest waiting tweets until `bytes` more fit; false when they cannot.
    bool make_room(std::size_t bytes);
    void note_dropped(const Batch& batch);

    const std::size_t cap_, high_, low_;
    std::size_t buffered_ = 0;  // everything held: control, replies, tweets, the write in progress, final
    std::size_t dropped_ = 0;
    DroppedIds dropped_ids_;

    std::string control_;           // waiting control bytes
    std::deque<Frame> replies_;     // waiting replies, never dropped
    std::deque<BatchPtr> tweets_;   // waiting tweet batches, oldest dropped first
    std::string final_;
    bool compressed_ = false;
    std::unique_ptr<websocket::ContextDeflater> own_deflater_;

    // The write in progress: owned bytes (control or final), the replies' message, or
    // tweet batches.
    bool writing_ = false;
    bool writing_final_ = false;
    bool final_sent_ = false;
    std::string owned_;
    std::vector<Frame> replies_writing_;
    std::vector<BatchPtr> batches_writing_;
    std::string own_compressed_;  // the batches being written, as frames from own_deflater_
    std::size_t writing_messages_ = 0, writing_bytes_ = 0;  // message count and bytes (for buffered_)
    websocket::FrameHeader header_;
    std::size_t written_ = 0, total_ = 0;
};

}  // namespace birdwatch
