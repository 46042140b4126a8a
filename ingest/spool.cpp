#include "ingest/spool.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace birdwatch {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t header_bytes = 8;
constexpr std::uint32_t max_record_bytes = 64u << 20;

std::uint32_t crc(const char* data, std::size_t n) {
    return static_cast<std::uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(data), static_cast<uInt>(n)));
}

bool read_exact(int fd, std::uint64_t offset, char* out, std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
        const ssize_t r = ::pread(fd, out + done, n - done, static_cast<off_t>(offset + done));
        if (r <= 0) return false;
        done += static_cast<std::size_t>(r);
    }
    return true;
}

// Reads the record at `offset`: false at the end or at a torn/corrupt record.
bool read_record(int fd, std::uint64_t offset, std::string& payload) {
    char header[header_bytes];
    if (!read_exact(fd, offset, header, header_bytes)) return false;
    std::uint32_t length, checksum;
    std::memcpy(&length, header, 4);
    std::memcpy(&checksum, header + 4, 4);
    if (length > max_record_bytes) return false;
    payload.resize(length);
    if (!read_exact(fd, offset + header_bytes, payload.data(), length)) return false;
    return crc(payload.data(), length) == checksum;
}

}  // namespace

std::string Spool::segment_path(std::uint64_t segment) const {
    char name[40];
    std::snprintf(name, sizeof name, "segment-%020llu.log", static_cast<unsigned long long>(segment));
    return options_.dir + "/" + name;
}

Spool::Spool(SpoolOptions options) : options_(std::move(options)) {
    std::error_code ec;
    fs::create_directories(options_.dir, ec);
    if (ec) throw std::runtime_error("spool: cannot create " + options_.dir + ": " + ec.message());
    std::ifstream checkpoint(options_.dir + "/checkpoint");
    if (checkpoint) checkpoint >> checkpoint_.segment >> checkpoint_.offset;
    std::ifstream position(options_.dir + "/source-position");
    if (!(position >> source_position_at_open_) || source_position_at_open_ < 0) source_position_at_open_ = 0;

    std::vector<std::uint64_t> segments;
    for (const auto& entry : fs::directory_iterator(options_.dir, ec)) {
        const std::string name = entry.path().filename().string();
        std::uint64_t number = 0;
        const char* digits = name.data() + std::min<std::size_t>(8, name.size());
        const auto [end, error] = std::from_chars(digits, name.data() + name.size(), number);
        if (name.rfind("segment-", 0) == 0 && error == std::errc() && std::string_view(end) == ".log")
            segments.push_back(number);
    }
    std::sort(segments.begin(), segments.end());
    if (!segments.empty() && checkpoint_.segment < segments.front()) checkpoint_ = {segments.front(), 0};

    // Count what is pending, and cut a torn tail off the last segment.
    end_ = checkpoint_;
    std::string record;
    for (std::uint64_t segment : segments) {
        if (segment < checkpoint_.segment) {
            fs::remove(segment_path(segment), ec);  // committed before a crash, not yet deleted
            continue;
        }
        const int fd = ::open(segment_path(segment).c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        std::uint64_t offset = segment == checkpoint_.segment ? checkpoint_.offset : 0;
        while (read_record(fd, offset, record)) {
            offset += header_bytes + record.size();
            ++pending_records_;
            pending_bytes_ += record.size();
        }
        ::close(fd);
        end_ = {segment, offset};
        if (segment == segments.back()) {
            if (::truncate(segment_path(segment).c_str(), static_cast<off_t>(offset)) != 0)
                throw std::runtime_error("spool: cannot repair " + segment_path(segment) + ": " + std::strerror(errno));
        }
    }
    read_ = checkpoint_;
    append_seq_ = pending_records_;
    if (const std::string error = open_for_append(end_.segment); !error.empty()) throw std::runtime_error(error);
}

Spool::~Spool() {
    if (append_fd_ >= 0) {
        if (dirty_) ::fdatasync(append_fd_);
        ::close(append_fd_);
    }
    if (read_fd_ >= 0) ::close(read_fd_);
}

std::string Spool::open_for_append(std::uint64_t segment) {
    const int fd = ::open(segment_path(segment).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return "spool: cannot open " + segment_path(segment) + ": " + std::strerror(errno);
    if (append_fd_ >= 0) ::close(append_fd_);
    append_fd_ = fd;
    struct stat st{};
    ::fstat(append_fd_, &st);
    std::lock_guard lock(mutex_);
    end_ = {segment, static_cast<std::uint64_t>(st.st_size)};
    return {};
}

void Spool::sync(bool force) {
    if (!dirty_ || options_.fsync == SpoolOptions::Fsync::never) return;
    const auto now = std::chrono::steady_clock::now();
    if (force || options_.fsync == SpoolOptions::Fsync::always || now - last_sync_ >= options_.fsync_interval) {
        ::fdatasync(append_fd_);
        last_sync_ = now;
        dirty_ = false;
    }
}

void Spool::sync_if_due() { sync(false); }

bool Spool::save_source_position(std::int64_t position, std::string& error) {
    const std::string tmp = options_.dir + "/source-position.tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        error = "spool: cannot write " + tmp + ": " + std::strerror(errno);
        return false;
    }
    const std::string text = std::to_string(position) + "\n";
    const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                         (options_.fsync != SpoolOptions::Fsync::always || ::fdatasync(fd) == 0);
    ::close(fd);
    if (!written || ::rename(tmp.c_str(), (options_.dir + "/source-position").c_str()) != 0) {
        error = "spool: cannot replace " + options_.dir + "/source-position: " + std::strerror(errno);
        return false;
    }
    return true;
}

bool Spool::append(std::span<const std::string> records, std::string& error, Appended* where) {
    Position end;
    {
        std::lock_guard lock(mutex_);
        end = end_;
    }
    if (end.offset >= options_.segment_bytes) {
        sync(true);
        if (error = open_for_append(end.segment + 1); !error.empty()) return false;  // the disk refuses: retried
        std::lock_guard lock(mutex_);
        end = end_;
    }
    std::string buffer;
    for (const std::string& r : records) {
        const std::uint32_t length = static_cast<std::uint32_t>(r.size());
        const std::uint32_t checksum = crc(r.data(), r.size());
        buffer.append(reinterpret_cast<const char*>(&length), 4);
        buffer.append(reinterpret_cast<const char*>(&checksum), 4);
        buffer.append(r);
    }
    std::size_t written = 0;
    while (written < buffer.size()) {
        const ssize_t n = ::write(append_fd_, buffer.data() + written, buffer.size() - written);
        if (n < 0) {
            error = std::string("spool write failed: ") + std::strerror(errno);
            // Keep the file consistent: drop a partial batch.
            ::ftruncate(append_fd_, static_cast<off_t>(end.offset));
            return false;
        }
        written += static_cast<std::size_t>(n);
    }
    dirty_ = true;
    sync(false);
    std::uint64_t bytes = 0;
    for (const auto& r : records) bytes += r.size();
    end.offset += buffer.size();
    if (where) *where = {append_seq_, records.size(), bytes, end};
    append_seq_ += records.size();
    std::lock_guard lock(mutex_);  // the records are in the file before anyone can count them
    end_ = end;
    pending_records_.fetch_add(records.size(), std::memory_order_relaxed);
    pending_bytes_.fetch_add(bytes, std::memory_order_relaxed);
    return true;
}

std::size_t Spool::read(std::vector<std::string>& out, std::size_t max, std::size_t max_bytes) {
    Position end;
    std::uint64_t pending = 0;
    {
        std::lock_guard lock(mutex_);
        end = end_;
        pending = pending_records_;
    }
    std::size_t n = 0, bytes = 0;
    std::string record;
    while (n < max && read_records_ < pending) {
        if (read_fd_segment_ != read_.segment) {
            if (read_fd_ >= 0) ::close(read_fd_);
            read_fd_ = ::open(segment_path(read_.segment).c_str(), O_RDONLY | O_CLOEXEC);
            read_fd_segment_ = read_.segment;
        }
        if (read_fd_ < 0 || !read_record(read_fd_, read_.offset, record)) {
            if (read_.segment >= end.segment) break;  // nothing more (cannot happen while counts agree)
            read_ = {read_.segment + 1, 0};          // the next segment continues the log
            continue;
        }
        if (n > 0 && bytes + record.size() > max_bytes) break;  // left for the next read
        read_.offset += header_bytes + record.size();
        ++read_records_;
        read_bytes_ += record.size();
        bytes += record.size();
        out.push_back(std::move(record));
        ++n;
    }
    return n;
}

void Spool::rewind() {
    read_ = checkpoint_;
    read_records_ = 0;
    read_bytes_ = 0;
}

void Spool::skip(const Appended& batch) {
    read_ = batch.end;
    read_records_ += batch.count;
    read_bytes_ += batch.bytes;
}

bool Spool::commit(std::string& error) {
    if (read_records_ == 0) return true;
    const std::string tmp = options_.dir + "/checkpoint.tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << read_.segment << ' ' << read_.offset << '\n';
        if (!out.flush()) {
            error = "spool: cannot write " + tmp;
            return false;
        }
    }
    if (::rename(tmp.c_str(), (options_.dir + "/checkpoint").c_str()) != 0) {
        error = std::string("spool: cannot replace the checkpoint: ") + std::strerror(errno);
        return false;
    }
    for (std::uint64_t s = checkpoint_.segment; s < read_.segment; ++s) ::unlink(segment_path(s).c_str());
    checkpoint_ = read_;
    checkpoint_seq_ += read_records_;
    {
        std::lock_guard lock(mutex_);
        pending_records_ -= read_records_;
        pending_bytes_ -= read_bytes_;
    }
    read_records_ = 0;
    read_bytes_ = 0;
    return true;
}

}  // namespace birdwatch
