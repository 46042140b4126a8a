#include "fanout/session.h"

#include "common/json_text.h"
#include "common/log.h"
#include "common/query/query.h"

#include <boost/asio/post.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>

#include <nlohmann/json.hpp>

#include <deque>
#include <optional>
#include <unordered_map>

namespace birdwatch {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;

SessionMetrics::SessionMetrics(MetricsRegistry& m)
    : frames_sent(m.counter("birdwatch_fanout_frames_sent_total", "WebSocket frames written to clients")),
      bytes_sent(m.counter("birdwatch_fanout_bytes_sent_total", "Payload bytes written to clients")),
      frames_dropped(m.counter("birdwatch_fanout_frames_dropped_total",
                               "Frames dropped from a slow client's full send queue")),
      messages_received(m.counter("birdwatch_fanout_client_messages_total", "Messages received from clients")),
      client_errors(m.counter("birdwatch_fanout_client_errors_total", "Error replies sent to clients")),
      queued_bytes(m.gauge("birdwatch_fanout_queued_bytes", "Bytes waiting in client send queues")) {}

namespace {

Frame error_reply(std::string_view code, std::string_view message, std::optional<std::size_t> position = {}) {
    std::string out = R"({"v":1,"type":"error","code":)";
    json_text::append_string(out, code);
    out += R"(,"message":)";
    json_text::append_string(out, message);
    if (position) {
        out += R"(,"position":)";
        json_text::append_int(out, static_cast<std::int64_t>(*position));
    }
    out += '}';
    return std::make_shared<const std::string>(std::move(out));
}

Frame query_reply(std::string_view type, const std::string& qid, const std::string* canonical) {
    std::string out = R"({"v":1,"type":)";
    json_text::append_string(out, type);
    out += R"(,"qid":)";
    json_text::append_string(out, qid);
    if (canonical) {
        out += R"(,"query":)";
        json_text::append_string(out, *canonical);
    }
    out += '}';
    return std::make_shared<const std::string>(std::move(out));
}

// One class owns the socket and its write queue (as in Beast's examples). Every
// member runs on the connection's strand; deliver()/close() hop onto it.
class WebSocketSession final : public Recipient, public std::enable_shared_from_this<WebSocketSession> {
public:
    WebSocketSession(net::ip::tcp::socket socket, Hub& hub, StoreReader* store, const SessionOptions& options,
                     SessionMetrics& metrics)
        : ws_(std::move(socket)), hub_(hub), store_(store), options_(options), metrics_(metrics) {}

    ~WebSocketSession() override { metrics_.queued_bytes.add(-static_cast<std::int64_t>(queued_bytes_)); }

    void run(beast::http::request<beast::http::string_body> upgrade) {
        ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
        ws_.set_option(websocket::stream_base::decorator(
            [](websocket::response_type& res) { res.set(beast::http::field::server, "birdwatch-fanout"); }));
        ws_.read_message_max(options_.max_message_bytes);
        ws_.text(true);
        ws_.async_accept(upgrade, [self = shared_from_this()](beast::error_code ec) { self->on_accept(ec); });
    }

    void deliver(const Frame& frame) override {
        net::post(ws_.get_executor(), [self = shared_from_this(), frame] { self->enqueue(frame); });
    }

    void close(unsigned short code) override {
        net::post(ws_.get_executor(), [self = shared_from_this(), code] {
            if (self->closing_) return;
            self->closing_ = true;
            self->ws_.async_close(websocket::close_reason(code), [self](beast::error_code) {});
        });
    }

private:
    void on_accept(beast::error_code ec) {
        if (ec) return;
        hub_.join(shared_from_this());
        read();
    }

    void read() {
        ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec) {
        if (ec) {  // closed by the peer, timed out, or a protocol violation (Beast sent the close)
            hub_.leave(this);
            closing_ = true;
            return;
        }
        metrics_.messages_received.inc();
        const std::string text = beast::buffers_to_string(buffer_.data());
        buffer_.consume(buffer_.size());
        if (Frame reply = answer(text)) enqueue(reply);  // store requests answer later, via deliver()
        read();
    }

    // The client protocol (docs/protocol.md): every message gets exactly one reply.
    Frame answer(const std::string& text) {
        const auto message = nlohmann::json::parse(text, nullptr, false);
        if (!message.is_object()) return error("bad_message", "a message must be a JSON object");
        const auto type = message.find("type");
        if (type == message.end() || !type->is_string())
            return error("bad_message", "a message needs a \"type\" string");
        if (*type == "subscribe") {
            const auto query = message.find("query");
            if (query == message.end() || !query->is_string())
                return error("bad_message", "subscribe needs a \"query\" string");
            const QueryParse parse = parse_query(query->get<std::string>());
            if (!parse.query) return error("bad_query", parse.error.message, parse.error.position);
            if (hub_.subscriptions_of(this) >= options_.max_subscriptions)
                return error("too_many_subscriptions",
                             "at most " + std::to_string(options_.max_subscriptions) + " subscriptions per connection");
            hub_.subscribe(this, parse.query->id, parse.query->canonical);
            queries_[parse.query->id] = parse.query->canonical;
            return query_reply("subscribed", parse.query->id, &parse.query->canonical);
        }
        if (*type == "unsubscribe") {
            const auto qid = message.find("qid");
            if (qid == message.end() || !qid->is_string())
                return error("bad_message", "unsubscribe needs a \"qid\" string");
            if (!hub_.unsubscribe(this, qid->get<std::string>()))
                return error("not_subscribed", "this connection holds no subscription " + qid->get<std::string>());
            queries_.erase(qid->get<std::string>());
            return query_reply("unsubscribed", qid->get<std::string>(), nullptr);
        }
        if (*type == "history" || *type == "resume" || *type == "get") return ask_store(*type, message);
        return error("unknown_type", "unknown message type \"" + type->get<std::string>() +
                                         "\" (expected subscribe, unsubscribe, history, resume or get)");
    }

    // Store reads answer asynchronously: the reply arrives through deliver().
    Frame ask_store(const std::string& type, const nlohmann::json& message) {
        if (!store_) return error("no_store", "this replica has no store configured");
        auto text_field = [&](const char* name) -> std::optional<std::string> {
            const auto it = message.find(name);
            if (it == message.end() || it->is_null()) return std::string();
            if (!it->is_string()) return std::nullopt;
            return it->get<std::string>();
        };
        StoreReader::Reply reply = [self = shared_from_this()](std::string frame) {
            self->deliver(std::make_shared<const std::string>(std::move(frame)));
        };
        bool queued = false;
        if (type == "get") {
            const auto id = text_field("id");
            if (!id || id->empty()) return error("bad_message", "get needs an \"id\" string");
            queued = store_->get(*id, std::move(reply));
        } else {
            const auto qid = text_field("qid");
            const auto position = text_field(type == "history" ? "before" : "since_id");
            if (!qid || !position) return error("bad_message", type + " needs string fields");
            std::string canonical;
            std::string id = *qid;
            if (qid->empty()) {  // history may name a query instead of a subscription
                const auto query = text_field("query");
                if (type != "history" || !query || query->empty())
                    return error("bad_message", type + " needs the \"qid\" of a subscription" +
                                                    (type == "history" ? " or a \"query\"" : ""));
                const QueryParse parse = parse_query(*query);
                if (!parse.query) return error("bad_query", parse.error.message, parse.error.position);
                canonical = parse.query->canonical;
                id = parse.query->id;
            } else {
                const auto held = queries_.find(*qid);
                if (held == queries_.end())
                    return error("not_subscribed", "this connection holds no subscription " + *qid);
                canonical = held->second;
            }
            if (type == "history") {
                std::size_t size = 20;
                if (const auto it = message.find("size"); it != message.end()) {
                    if (!it->is_number_unsigned() || it->get<std::size_t>() == 0)
                        return error("bad_message", "history size must be a positive integer");
                    size = it->get<std::size_t>();
                }
                queued = store_->history(id, canonical, size, *position, std::move(reply));
            } else {
                queued = store_->resume(id, canonical, *position, std::move(reply));
            }
        }
        if (!queued) return error("busy", "too many store requests in flight, try again shortly");
        return nullptr;
    }

    Frame error(std::string_view code, std::string_view message, std::optional<std::size_t> position = {}) {
        metrics_.client_errors.inc();
        return error_reply(code, message, position);
    }

    void enqueue(const Frame& frame) {
        if (closing_) return;
        // Bounded memory: drop the oldest frames not yet being written.
        const std::size_t first_droppable = writing_ ? 1 : 0;
        while (queue_.size() > first_droppable && queued_bytes_ + frame->size() > options_.max_queue_bytes) {
            release(queue_[first_droppable]->size());
            queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(first_droppable));
            metrics_.frames_dropped.inc();
        }
        queue_.push_back(frame);
        queued_bytes_ += frame->size();
        metrics_.queued_bytes.add(static_cast<std::int64_t>(frame->size()));
        if (!writing_) write();
    }

    void write() {
        writing_ = true;
        ws_.async_write(net::buffer(*queue_.front()),
                        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_write(ec); });
    }

    void on_write(beast::error_code ec) {
        writing_ = false;
        if (ec) {
            hub_.leave(this);
            closing_ = true;
            return;
        }
        metrics_.frames_sent.inc();
        metrics_.bytes_sent.inc(queue_.front()->size());
        release(queue_.front()->size());
        queue_.pop_front();
        if (!queue_.empty() && !closing_) write();
    }

    void release(std::size_t bytes) {
        queued_bytes_ -= bytes;
        metrics_.queued_bytes.add(-static_cast<std::int64_t>(bytes));
    }

    websocket::stream<beast::tcp_stream> ws_;
    Hub& hub_;
    StoreReader* store_;
    const SessionOptions& options_;
    SessionMetrics& metrics_;
    beast::flat_buffer buffer_;
    std::deque<Frame> queue_;
    std::size_t queued_bytes_ = 0;
    bool writing_ = false;
    bool closing_ = false;
    std::unordered_map<std::string, std::string> queries_;  // this connection's subscriptions: qid -> canonical
};

}  // namespace

void start_websocket_session(net::ip::tcp::socket socket, beast::http::request<beast::http::string_body> upgrade,
                             Hub& hub, StoreReader* store, const SessionOptions& options, SessionMetrics& metrics) {
    std::make_shared<WebSocketSession>(std::move(socket), hub, store, options, metrics)->run(std::move(upgrade));
}

}  // namespace birdwatch
