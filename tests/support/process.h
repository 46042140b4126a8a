#pragma once
// Child processes for tests: spawned with extra environment, output to a log file,
// killed on destruction so a failing test never leaves daemons behind.

#include <chrono>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

namespace birdwatch::test {

// Which sanitizer this build has: GCC says so with __SANITIZE_*__, clang with __has_feature.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BIRDWATCH_TEST_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define BIRDWATCH_TEST_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define BIRDWATCH_TEST_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define BIRDWATCH_TEST_TSAN 1
#endif

// ThreadSanitizer slows every thread several times: deadlines that bound "promptly"
// (not correctness) stretch by this factor in a TSan build.
#if defined(BIRDWATCH_TEST_TSAN)
inline constexpr int sanitizer_slowdown = 3;
#else
inline constexpr int sanitizer_slowdown = 1;
#endif


class ChildProcess {
public:
    ChildProcess() = default;
    // Throws std::runtime_error if the program cannot be started.
    ChildProcess(const std::vector<std::string>& argv, const std::string& log_path,
                 const std::vector<std::string>& extra_env = {});
    ChildProcess(ChildProcess&& other) noexcept;
    ChildProcess& operator=(ChildProcess&& other) noexcept;
    ~ChildProcess();

    int pid() const { return pid_; }
    bool running();
    void signal(int sig);
    // The exit status (or 128+signal) if it ended within `timeout`.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);
    // SIGKILL and reap.
    void kill();
    const std::string& log_path() const { return log_path_; }
    std::string log_tail(std::size_t bytes = 4000) const;

private:
    int pid_ = -1;
    std::optional<int> status_;
    std::string log_path_;
};

// A directory under $TMPDIR removed with its contents on destruction.
class TempDir {
public:
    TempDir();
    ~TempDir();
    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

unsigned short free_port();
bool port_open(unsigned short port);
// Whether 127.0.0.1:port can be bound now.
bool port_bindable(unsigned short port);
// A blocking TCP socket connected to 127.0.0.1:port (5 s receive timeout), or -1.
int connect_loopback(unsigned short port);

struct HttpReply {
    int status = 0;  // 0 when no connection could be made
    std::string body;
};
HttpReply http_get(unsigned short port, const std::string& path);
// One series from a daemon's /metrics, labels included as rendered (0 when absent).
std::uint64_t metric(unsigned short port, const std::string& series);

// Polls `predicate` every 10 ms until it holds or `timeout` passes.
template <typename Predicate>
bool wait_until(Predicate predicate, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!predicate()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        struct timespec ts{0, 10'000'000};
        nanosleep(&ts, nullptr);
    }
    return true;
}

std::string find_program(const std::string& name);

// A process's resident memory in KiB (-1 when it is gone), and the CPU seconds (user +
// system) it has used so far.
long rss_kib(int pid);
double cpu_seconds(int pid);  // empty when not on PATH (or /usr/sbin)

}  // namespace birdwatch::test
