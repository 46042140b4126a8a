#include "tests/support/process.h"

#include <atomic>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace birdwatch::test {

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& log_path,
                           const std::vector<std::string>& extra_env)
    : log_path_(log_path) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    // The extra variables replace inherited ones of the same name.
    auto name_of = [](std::string_view e) { return e.substr(0, e.find('=') + 1); };
    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e) {
        bool replaced = false;
        for (const auto& extra : extra_env) replaced |= name_of(extra) == name_of(*e);
        if (!replaced) env_strings.emplace_back(*e);
    }
    for (const auto& e : extra_env) env_strings.push_back(e);
    std::vector<char*> env;
    for (auto& e : env_strings) env.push_back(e.data());
    env.push_back(nullptr);

    const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) throw std::runtime_error("cannot open log " + log_path);
    pid_ = ::fork();
    if (pid_ == 0) {
        ::dup2(log_fd, 1);
        ::dup2(log_fd, 2);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        ::execve(args[0], args.data(), env.data());
        std::fprintf(stderr, "exec %s failed: %s\n", args[0], std::strerror(errno));
        ::_exit(127);
    }
    ::close(log_fd);
    if (pid_ < 0) throw std::runtime_error("fork failed");
}

ChildProcess::ChildProcess(ChildProcess&& o) noexcept : pid_(o.pid_), status_(o.status_), log_path_(std::move(o.log_path_)) {
    o.pid_ = -1;
}

ChildProcess& ChildProcess::operator=(ChildProcess&& o) noexcept {
    if (this != &o) {
        kill();
        pid_ = o.pid_;
        status_ = o.status_;
        log_path_ = std::move(o.log_path_);
        o.pid_ = -1;
    }
    return *this;
}

ChildProcess::~ChildProcess() { kill(); }

bool ChildProcess::running() {
    if (pid_ <= 0 || status_) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return false;
    }
    return true;
}

void ChildProcess::signal(int sig) {
    if (running()) ::kill(pid_, sig);
}

std::optional<int> ChildProcess::wait_exit(std::chrono::milliseconds timeout) {
    wait_until([&] { return !running(); }, timeout);
    return status_;
}

void ChildProcess::kill() {
    if (running()) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        status_ = 128 + SIGKILL;
    }
}

std::string ChildProcess::log_tail(std::size_t bytes) const {
    std::ifstream in(log_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string all = ss.str();
    return all.size() > bytes ? all.substr(all.size() - bytes) : all;
}

TempDir::TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base ? base : "/tmp") + "/birdwatch-test-XXXXXX";
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
}

TempDir::~TempDir() {
    std::error_code ignored;
    if (!std::getenv("BIRDWATCH_KEEP_TEST_DIRS")) std::filesystem::remove_all(path_, ignored);
}

namespace {

// A TCP socket bound to 127.0.0.1:port (0: any free port), or -1.
int bound_loopback(unsigned short port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
    ::close(fd);
    return -1;
}

}  // namespace

// Below Linux's ephemeral range (32768+): a daemon restarted on its port must find it free,
// and the kernel hands ports of that range to any outgoing connection meanwhile. Each
// process walks the range from its own pid-chosen start, so concurrent tests rarely meet.
unsigned short free_port() {
    constexpr unsigned first = 20000, count = 12768;
    static std::atomic<unsigned> next{static_cast<unsigned>(::getpid()) * 7919u};
    for (unsigned attempt = 0; attempt < count; ++attempt) {
        const auto port = static_cast<unsigned short>(first + next.fetch_add(131) % count);
        if (const int fd = bound_loopback(port); fd >= 0) {
            ::close(fd);
            return port;
        }
    }
    const int fd = bound_loopback(0);  // the whole range busy: any port the kernel gives
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
}

bool port_bindable(unsigned short port) {
    const int fd = bound_loopback(port);
    if (fd >= 0) ::close(fd);
    return fd >= 0;
}

int connect_loopback(unsigned short port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

bool port_open(unsigned short port) {
    const int fd = connect_loopback(port);
    if (fd < 0) return false;
    ::close(fd);
    return true;
}

std::uint64_t metric(unsigned short port, const std::string& series) {
    const std::string body = http_get(port, "/metrics").body;
    const auto at = body.find("\n" + series + " ");
    return at == std::string::npos ? 0 : std::stoull(body.substr(at + series.size() + 2));
}

HttpReply http_get(unsigned short port, const std::string& path) {
    HttpReply reply;
    const int fd = connect_loopback(port);
    if (fd < 0) return reply;
    const std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    (void)!::write(fd, request.data(), request.size());
    std::string response;
    char buffer[4096];
    ssize_t n;
    while ((n = ::read(fd, buffer, sizeof buffer)) > 0) response.append(buffer, static_cast<std::size_t>(n));
    ::close(fd);
    if (response.rfind("HTTP/1.1 ", 0) == 0) reply.status = std::atoi(response.c_str() + 9);
    if (auto body = response.find("\r\n\r\n"); body != std::string::npos) reply.body = response.substr(body + 4);
    return reply;
}

std::string find_program(const std::string& name) {
    std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
    path += ":/usr/sbin:/usr/bin:/sbin";
    std::stringstream dirs(path);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        const std::string candidate = dir + "/" + name;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return {};
}

long rss_kib(int pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

double cpu_seconds(int pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    const std::string text((std::istreambuf_iterator<char>(stat)), {});
    std::istringstream fields(text.substr(text.rfind(')') + 2));  // after the command name, from field 3
    std::string field;
    long ticks = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i)
        if (i == 14 || i == 15) ticks += std::stol(field);  // utime, stime
    return static_cast<double>(ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace birdwatch::test
