// birdwatch-bench-baseline: the least work any fanout can do, as the yardstick for
// birdwatch-fanout. Every client gets every payload; nothing is routed, limited or
// parsed. Each loop is one thread with one epoll set holding its own SO_REUSEPORT
// listener, its clients and its own Redis subscription, so no payload crosses a
// thread. A payload is framed once, appended to the loop's log (the frames it sent,
// back to the slowest client's position), and every client is just an offset into
// that log: after each read from Redis the loop writes each caught-up client
// everything from its offset to the end in one send(). When the rate is high, a pass
// over the clients takes longer, more frames wait for the next one, and each send
// carries more of them. A client that cannot take it all waits for EPOLLOUT (edge
// triggered, registered once: no epoll_ctl per write). A client more than
// --max-behind bytes behind is dropped, so the log is bounded.
//   birdwatch-bench-baseline --port P --redis-port R [--loops L] [--channel matches] [--max-behind BYTES]

#include "fanout/websocket_codec.h"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

struct Options {
    unsigned short port = 0;
    int redis_port = 6379;
    int loops = 1;
    std::string channel = "matches";
    std::size_t max_behind = 64 << 20;
};

class Loop {
public:
    explicit Loop(const Options& options) : options_(options) {
        epoll_ = epoll_create1(0);
        listener_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        const int one = 1;
        setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        setsockopt(listener_, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(options.port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(listener_, 4096) != 0) {
            std::perror("bind/listen");
            std::exit(1);
        }
        watch(listener_, EPOLLIN);
        redis_ = redisConnect("127.0.0.1", options.redis_port);
        if (!redis_ || redis_->err) {
            std::cerr << "cannot connect to redis\n";
            std::exit(1);
        }
        redisAppendCommand(redis_, "SUBSCRIBE %b", options.channel.data(), options.channel.size());
        int done = 0;
        while (!done)
            if (redisBufferWrite(redis_, &done) != REDIS_OK) std::exit(1);
        fcntl(redis_->fd, F_SETFL, fcntl(redis_->fd, F_GETFL) | O_NONBLOCK);
        watch(redis_->fd, EPOLLIN);
    }

    void run() {
        std::vector<epoll_event> events(1024);
        while (true) {
            const int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), -1);
            bool fresh = false;
            for (int i = 0; i < n; ++i) {
                const int fd = events[i].data.fd;
                if (fd == listener_) accept_all();
                else if (fd == redis_->fd) fresh = read_redis() || fresh;
                else if (const auto it = index_.find(fd); it != index_.end()) on_client(it->second, events[i].events);
            }
            if (fresh) send_to_caught_up();
        }
    }

private:
    struct Client {
        int fd = -1;
        bool open = false;     // handshake done
        bool blocked = false;  // the socket was full: waits for EPOLLOUT
        std::uint64_t sent = 0;  // absolute log offset written so far
        std::string request;   // handshake bytes so far
    };

    void watch(int fd, std::uint32_t events) {
        epoll_event ev{};
        ev.events = events;
        ev.data.fd = fd;
        epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
    }

    void accept_all() {
        while (true) {
            const int fd = accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) return;
            const int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            index_[fd] = clients_.size();
            clients_.push_back(std::make_unique<Client>());
            clients_.back()->fd = fd;
            watch(fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
        }
    }

    void drop(std::size_t at) {
        close(clients_[at]->fd);
        index_.erase(clients_[at]->fd);
        if (at + 1 != clients_.size()) {
            clients_[at] = std::move(clients_.back());
            index_[clients_[at]->fd] = at;
        }
        clients_.pop_back();
    }

    std::uint64_t log_end() const { return log_base_ + log_.size(); }

    // Reads all Redis has sent; true when frames were added to the log.
    bool read_redis() {
        char buffer[64 * 1024];
        while (true) {
            const ssize_t n = recv(redis_->fd, buffer, sizeof buffer, 0);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
            if (n <= 0) {
                std::cerr << "redis connection lost\n";
                std::exit(1);
            }
            redisReaderFeed(redis_->reader, buffer, static_cast<std::size_t>(n));
            if (static_cast<std::size_t>(n) < sizeof buffer) break;
        }
        bool added = false;
        void* raw = nullptr;
        while (redisGetReplyFromReader(redis_, &raw) == REDIS_OK && raw) {
            auto* reply = static_cast<redisReply*>(raw);
            if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
                std::strcmp(reply->element[0]->str, "message") == 0) {
                const auto header = birdwatch::websocket::frame_header(birdwatch::websocket::Opcode::text,
                                                                       reply->element[2]->len);
                log_.append(header.view());
                log_.append(reply->element[2]->str, reply->element[2]->len);
                added = true;
            }
            freeReplyObject(reply);
        }
        return added;
    }

    void on_client(std::size_t at, std::uint32_t events) {
        Client& client = *clients_[at];
        if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
            if (!read_from(client)) return drop(at);
        }
        if ((events & EPOLLOUT) && client.open && client.blocked) {
            client.blocked = false;
            if (!send_rest(client)) return drop(at);
        }
    }

    bool read_from(Client& client) {
        char buffer[16384];
        while (true) {
            const ssize_t n = read(client.fd, buffer, sizeof buffer);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return false;
            if (n < 0) return errno == EAGAIN || errno == EINTR;
            if (client.open) continue;  // client messages are not this server's business
            client.request.append(buffer, static_cast<std::size_t>(n));
            const auto end = client.request.find("\r\n\r\n");
            if (end == std::string::npos) {
                if (client.request.size() > 16384) return false;
                continue;
            }
            std::string lower = client.request.substr(0, end);
            std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
            const auto at = lower.find("sec-websocket-key:");
            if (at == std::string::npos) return false;
            std::string key = client.request.substr(at + 18, client.request.find("\r\n", at) - at - 18);
            key.erase(0, key.find_first_not_of(' '));
            key.erase(key.find_last_not_of(' ') + 1);
            const std::string response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                         "Sec-WebSocket-Accept: " + birdwatch::websocket::accept_key(key) + "\r\n\r\n";
            if (write(client.fd, response.data(), response.size()) != static_cast<ssize_t>(response.size()))
                return false;
            client.open = true;
            client.sent = log_end();  // from the next payload on
            std::string().swap(client.request);
        }
    }

    // Writes from the client's offset to the log's end; false when the socket is broken.
    bool send_rest(Client& client) {
        while (client.sent < log_end()) {
            const std::size_t from = static_cast<std::size_t>(client.sent - log_base_);
            const ssize_t n = send(client.fd, log_.data() + from, log_.size() - from, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno != EAGAIN) return false;
                client.blocked = true;
                return true;
            }
            client.sent += static_cast<std::uint64_t>(n);
        }
        return true;
    }

    // One pass: every open client that is not waiting for EPOLLOUT gets the new frames.
    // Then the log forgets what every client has, or drops the clients too far behind.
    void send_to_caught_up() {
        std::uint64_t slowest = log_end();
        for (std::size_t at = 0; at < clients_.size();) {
            Client& client = *clients_[at];
            if (client.open && !client.blocked && !send_rest(client)) {
                drop(at);
                continue;
            }
            if (client.open && log_end() - client.sent > options_.max_behind) {
                drop(at);
                continue;
            }
            if (client.open) slowest = std::min(slowest, client.sent);
            ++at;
        }
        const std::size_t forget = static_cast<std::size_t>(slowest - log_base_);
        if (forget > 0 && forget >= log_.size() / 2) {
            log_.erase(0, forget);
            log_base_ = slowest;
        }
    }

    const Options& options_;
    int epoll_ = -1, listener_ = -1;
    redisContext* redis_ = nullptr;
    std::vector<std::unique_ptr<Client>> clients_;  // dense: a pass walks them in order
    std::unordered_map<int, std::size_t> index_;   // fd -> position in clients_
    std::string log_;            // frames from log_base_ on
    std::uint64_t log_base_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
    Options options;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i], value = argv[i + 1];
        if (flag == "--port") options.port = static_cast<unsigned short>(std::stoi(value));
        else if (flag == "--redis-port") options.redis_port = std::stoi(value);
        else if (flag == "--loops") options.loops = std::max(1, std::stoi(value));
        else if (flag == "--channel") options.channel = value;
        else if (flag == "--max-behind") options.max_behind = std::stoull(value);
    }
    if (options.port == 0) {
        std::cerr << "usage: birdwatch-bench-baseline --port P --redis-port R [--loops L] [--channel C] [--max-behind B]\n";
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);
    std::vector<std::unique_ptr<Loop>> loops;
    for (int i = 0; i < options.loops; ++i) loops.push_back(std::make_unique<Loop>(options));
    std::cout << "baseline listening port=" << options.port << " loops=" << options.loops << std::endl;
    std::vector<std::thread> running;
    for (std::size_t i = 1; i < loops.size(); ++i) running.emplace_back([&loop = loops[i]] { loop->run(); });
    loops[0]->run();
}
