#include "tests/support/script_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace birdwatch::test {

namespace {

bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n <= 0) return false;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

std::string gzip(const std::string& data) {
    z_stream z{};
    deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    std::string out(compressBound(static_cast<uLong>(data.size())) + 64, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

std::string hex(std::size_t n) {
    std::ostringstream s;
    s << std::hex << n;
    return s.str();
}

}  // namespace

ScriptServer::ScriptServer() {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listener_, 64) != 0)
        throw std::runtime_error("script server: cannot listen");
    socklen_t len = sizeof addr;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { serve(); });
}

ScriptServer::~ScriptServer() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    changed_.notify_all();
    ::shutdown(listener_, SHUT_RDWR);
    acceptor_.join();
    for (auto& t : connections_) t.join();
    ::close(listener_);
}

void ScriptServer::enqueue(const std::string& path, ScriptedResponse response) {
    std::lock_guard lock(mutex_);
    scripts_[path].push_back(std::move(response));
}

void ScriptServer::set_handler(Handler handler) {
    std::lock_guard lock(mutex_);
    handler_ = std::move(handler);
}

std::vector<RecordedRequest> ScriptServer::requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
}

bool ScriptServer::wait_for_requests(std::size_t count, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return requests_.size() >= count; });
}

void ScriptServer::serve() {
    while (true) {
        const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) return;
        std::lock_guard lock(mutex_);
        if (stopping_) {
            ::close(fd);
            return;
        }
        connections_.emplace_back([this, fd] { handle(fd); });
    }
}

void ScriptServer::handle(int fd) {
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // Read the request head and a Content-Length body.
    std::string raw;
    char buffer[4096];
    std::size_t head_end = std::string::npos;
    while ((head_end = raw.find("\r\n\r\n")) == std::string::npos) {
        const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0) {
            ::close(fd);
            return;
        }
        raw.append(buffer, static_cast<std::size_t>(n));
    }
    RecordedRequest request;
    std::istringstream head(raw.substr(0, head_end));
    std::string line;
    std::getline(head, line);
    std::istringstream first(line);
    first >> request.method >> request.target;
    while (std::getline(head, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string name = line.substr(0, colon);
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
        request.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
    }
    const std::size_t length = request.headers.count("content-length") ? std::stoul(request.headers["content-length"]) : 0;
    request.body = raw.substr(head_end + 4);
    while (request.body.size() < length) {
        const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0) break;
        request.body.append(buffer, static_cast<std::size_t>(n));
    }

    ScriptedResponse response{404, "text/plain", {"no scripted response left for this path\n"}, {}, false};
    Handler handler;
    bool scripted = false;
    {
        std::lock_guard lock(mutex_);
        const std::string path = request.target.substr(0, request.target.find('?'));
        auto& queue = scripts_[path];
        if (!queue.empty()) {
            response = std::move(queue.front());
            queue.pop_front();
            scripted = true;
        }
        handler = handler_;
        request.at = std::chrono::steady_clock::now();
        requests_.push_back(request);
    }
    if (!scripted && handler) response = handler(request);
    changed_.notify_all();

    std::string reply = "HTTP/1.1 " + std::to_string(response.status) + " Scripted\r\nContent-Type: " +
                        response.content_type + "\r\n";
    std::vector<std::string> chunks = response.chunks;
    if (response.gzip) {
        std::string all;
        for (const auto& c : chunks) all += c;
        const std::string packed = gzip(all);
        chunks.clear();
        for (std::size_t i = 0; i < packed.size(); i += 100) chunks.push_back(packed.substr(i, 100));
        reply += "Content-Encoding: gzip\r\n";
    }
    if (response.chunked) {
        reply += "Transfer-Encoding: chunked\r\n\r\n";
    } else {
        std::size_t total = 0;
        for (const auto& c : chunks) total += c.size();
        reply += "Content-Length: " + std::to_string(total) + "\r\nConnection: close\r\n\r\n";
    }
    bool ok = write_all(fd, reply);
    for (const auto& chunk : chunks) {
        if (!ok) break;
        if (response.chunk_delay.count()) std::this_thread::sleep_for(response.chunk_delay);
        ok = response.chunked ? write_all(fd, hex(chunk.size()) + "\r\n" + chunk + "\r\n") : write_all(fd, chunk);
    }
    if (ok && response.hold.count()) {
        // Silent, but notice the client leaving (as a real server would) and our own shutdown.
        const auto until = std::chrono::steady_clock::now() + response.hold;
        while (std::chrono::steady_clock::now() < until) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 50) > 0) break;  // the client closed (or sent something)
            std::lock_guard lock(mutex_);
            if (stopping_) break;
        }
    }
    if (ok && !response.cut && response.chunked) write_all(fd, "0\r\n\r\n");
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
}

}  // namespace birdwatch::test
