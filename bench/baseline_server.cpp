// birdwatch-bench-baseline: the least work any fanout can do, as the yardstick
// for birdwatch-fanout. Accepts the WebSocket handshake, subscribes to a Redis
// channel, encodes each payload's frame once, and writes the same bytes to every
// socket without blocking: each loop writes a burst (what one Redis read brought)
// to each socket with one writev over the shared frames, keeping what the socket
// did not take in that socket's pending buffer. No routing, no queries, no limits,
// no client messages (read and discarded). One epoll loop per thread, each with its
// own SO_REUSEPORT listener.
//   birdwatch-bench-baseline --port P --redis-port R [--threads T] [--channel matches]

#include "fanout/websocket_codec.h"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

using Frame = std::shared_ptr<const std::string>;
using Burst = std::vector<Frame>;

Frame encode_frame(const char* data, std::size_t size) {
    const auto header = birdwatch::websocket::frame_header(birdwatch::websocket::Opcode::text, size);
    std::string frame(header.view());
    frame.append(data, size);
    return std::make_shared<const std::string>(std::move(frame));
}

class Loop {
public:
    explicit Loop(unsigned short port) {
        epoll_ = epoll_create1(0);
        wake_ = eventfd(0, EFD_NONBLOCK);
        listener_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        const int one = 1;
        setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        setsockopt(listener_, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(listener_, 4096) != 0) {
            std::perror("bind/listen");
            std::exit(1);
        }
        watch(listener_, EPOLLIN);
        watch(wake_, EPOLLIN);
    }

    // From the Redis thread.
    void post(const std::shared_ptr<const Burst>& burst) {
        {
            std::lock_guard lock(mutex_);
            inbox_.push_back(burst);
        }
        const std::uint64_t one = 1;
        if (write(wake_, &one, sizeof one) < 0) std::perror("eventfd");
    }

    void run() {
        std::vector<epoll_event> events(1024);
        std::vector<char> buffer(64 * 1024);
        while (true) {
            const int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), -1);
            for (int i = 0; i < n; ++i) {
                const int fd = events[i].data.fd;
                if (fd == listener_) accept_all();
                else if (fd == wake_) deliver();
                else {
                    const auto it = clients_.find(fd);
                    if (it == clients_.end()) continue;
                    if ((events[i].events & EPOLLOUT) && !write_pending(it->second)) {
                        drop(it->second);
                        continue;
                    }
                    if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_from(it->second, buffer);
                }
            }
        }
    }

private:
    struct Client {
        int fd = -1;
        bool open = false;     // handshake done
        std::string request;   // handshake bytes so far
        std::vector<Frame> pending;  // not yet fully written; the first partly
        std::size_t pending_offset = 0;
    };

    void watch(int fd, std::uint32_t events, int op = EPOLL_CTL_ADD) {
        epoll_event ev{};
        ev.events = events;
        ev.data.fd = fd;
        epoll_ctl(epoll_, op, fd, &ev);
    }

    void accept_all() {
        while (true) {
            const int fd = accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) return;
            const int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            clients_[fd].fd = fd;
            watch(fd, EPOLLIN);
        }
    }

    void drop(Client& client) {
        close(client.fd);
        clients_.erase(client.fd);
    }

    void read_from(Client& client, std::vector<char>& buffer) {
        while (true) {
            const ssize_t n = read(client.fd, buffer.data(), buffer.size());
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return drop(client);
            if (n < 0) return;
            if (client.open) continue;  // client messages are not this server's business
            client.request.append(buffer.data(), static_cast<std::size_t>(n));
            const auto end = client.request.find("\r\n\r\n");
            if (end == std::string::npos) {
                if (client.request.size() > 16384) return drop(client);
                continue;
            }
            std::string lower = client.request.substr(0, end);
            std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
            const auto at = lower.find("sec-websocket-key:");
            if (at == std::string::npos) return drop(client);
            std::string key = client.request.substr(at + 18, client.request.find("\r\n", at) - at - 18);
            key.erase(0, key.find_first_not_of(' '));
            key.erase(key.find_last_not_of(' ') + 1);
            const std::string response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                         "Sec-WebSocket-Accept: " + birdwatch::websocket::accept_key(key) + "\r\n\r\n";
            if (write(client.fd, response.data(), response.size()) != static_cast<ssize_t>(response.size()))
                return drop(client);
            client.open = true;
            std::string().swap(client.request);
        }
    }

    void deliver() {
        std::uint64_t count;
        if (read(wake_, &count, sizeof count) < 0) return;
        std::vector<std::shared_ptr<const Burst>> bursts;
        {
            std::lock_guard lock(mutex_);
            bursts.swap(inbox_);
        }
        std::vector<int> gone;
        for (auto& [fd, client] : clients_) {
            if (!client.open) continue;
            const bool was_idle = client.pending.empty();
            for (const auto& burst : bursts) client.pending.insert(client.pending.end(), burst->begin(), burst->end());
            if (was_idle && !write_pending(client)) gone.push_back(fd);
        }
        for (const int fd : gone) drop(clients_.at(fd));
    }

    // One writev over the pending frames; false when the socket is broken.
    bool write_pending(Client& client) {
        while (!client.pending.empty()) {
            iovec iov[IOV_MAX];
            int count = 0;
            for (std::size_t i = 0; i < client.pending.size() && count < IOV_MAX; ++i, ++count) {
                const std::size_t skip = i == 0 ? client.pending_offset : 0;
                iov[count] = {const_cast<char*>(client.pending[i]->data()) + skip, client.pending[i]->size() - skip};
            }
            const ssize_t n = writev(client.fd, iov, count);
            if (n < 0) {
                if (errno != EAGAIN) return false;
                watch(client.fd, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
                return true;
            }
            std::size_t written = static_cast<std::size_t>(n) + client.pending_offset;
            std::size_t done = 0;
            while (done < client.pending.size() && written >= client.pending[done]->size())
                written -= client.pending[done++]->size();
            client.pending.erase(client.pending.begin(), client.pending.begin() + static_cast<std::ptrdiff_t>(done));
            client.pending_offset = written;
        }
        watch(client.fd, EPOLLIN, EPOLL_CTL_MOD);
        return true;
    }

    int epoll_, wake_, listener_;
    std::unordered_map<int, Client> clients_;
    std::mutex mutex_;
    std::vector<std::shared_ptr<const Burst>> inbox_;
};

}  // namespace

int main(int argc, char** argv) {
    unsigned short port = 0;
    int redis_port = 6379, threads = 2;
    std::string channel = "matches";
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i], value = argv[i + 1];
        if (flag == "--port") port = static_cast<unsigned short>(std::stoi(value));
        else if (flag == "--redis-port") redis_port = std::stoi(value);
        else if (flag == "--threads") threads = std::max(1, std::stoi(value));
        else if (flag == "--channel") channel = value;
    }
    if (port == 0) {
        std::cerr << "usage: birdwatch-bench-baseline --port P --redis-port R [--threads T] [--channel C]\n";
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);
    std::vector<std::unique_ptr<Loop>> loops;
    for (int i = 0; i < threads; ++i) loops.push_back(std::make_unique<Loop>(port));
    std::vector<std::thread> running;
    for (auto& loop : loops) running.emplace_back([&loop] { loop->run(); });

    redisContext* redis = redisConnect("127.0.0.1", redis_port);
    if (!redis || redis->err) {
        std::cerr << "cannot connect to redis\n";
        return 1;
    }
    freeReplyObject(redisCommand(redis, "SUBSCRIBE %b", channel.data(), channel.size()));
    std::cout << "baseline listening port=" << port << " threads=" << threads << std::endl;
    Burst burst;
    while (true) {
        void* raw = nullptr;
        if (redisGetReplyFromReader(redis, &raw) != REDIS_OK) return 1;
        if (!raw) {
            if (!burst.empty()) {
                const auto shared = std::make_shared<const Burst>(std::move(burst));
                burst.clear();
                for (auto& loop : loops) loop->post(shared);
            }
            if (redisGetReply(redis, &raw) != REDIS_OK) return 1;
        }
        auto* reply = static_cast<redisReply*>(raw);
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 && std::strcmp(reply->element[0]->str, "message") == 0)
            burst.push_back(encode_frame(reply->element[2]->str, reply->element[2]->len));
        freeReplyObject(reply);
    }
}
