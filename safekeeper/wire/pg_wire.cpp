#include "wire/pg_wire.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <time.h>

#include <algorithm>
#include <cstring>

#include "walproposer/byte_order.h"
#include "wire/tls.h"

namespace wp::sk {
namespace {
constexpr std::uint32_t kProtocolV3 = 196608;          // 3.0
constexpr std::uint32_t kSslRequestCode = 80877103;
constexpr std::uint32_t kGssEncRequestCode = 80877104;
constexpr std::uint32_t kCancelRequestCode = 80877102;
constexpr std::size_t kRecvChunk = 256 * 1024;

}  // namespace

namespace {
std::int64_t monotonic_ms() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}
}  // namespace

PgConnection::PgConnection(int fd, std::string peer, ConnectionLimits limits)
    : fd_(fd),
      peer_(std::move(peer)),
      limits_(limits),
      startup_deadline_ms_(monotonic_ms() + limits.startup_timeout_ms) {}

PgConnection::~PgConnection() {
    if (ssl_ != nullptr) {
        (void)SSL_shutdown(ssl_);  // best effort: a close_notify, no wait for the reply
        SSL_free(ssl_);
    }
    if (fd_ >= 0) ::close(fd_);
}

Status PgConnection::wait_socket(short events, std::int64_t deadline_ms, const char* what) {
    for (;;) {
        int timeout = -1;
        if (deadline_ms != 0) {
            const std::int64_t left = deadline_ms - monotonic_ms();
            if (left <= 0)
                return Status::invalid("client " + peer_ + " did not complete " + what +
                                       " within the time limit");
            timeout = static_cast<int>(left);
        }
        pollfd p{fd_, events, 0};
        const int rc = ::poll(&p, 1, timeout);
        if (rc > 0) return Status();
        if (rc < 0 && errno != EINTR) return Status::from_errno("poll " + peer_, errno);
    }
}

Status PgConnection::start_tls() {
    // Bytes that came after the SSLRequest arrived unencrypted; taking them
    // as part of the TLS stream would let a man in the middle inject them.
    if (in_end_ > in_pos_)
        return Status::invalid("client " + peer_ + " sent data after SSLRequest before the TLS "
                               "handshake");
    ssl_ = SSL_new(tls_ctx_);
    if (ssl_ == nullptr) return Status::error("cannot start TLS: " + openssl_error_text());
    const int flags = ::fcntl(fd_, F_GETFL, 0);
    if (flags < 0 || ::fcntl(fd_, F_SETFL, flags | O_NONBLOCK) < 0)
        return Status::from_errno("fcntl " + peer_, errno);
    SSL_set_fd(ssl_, fd_);
    for (;;) {
        ERR_clear_error();  // SSL_get_error needs an empty queue
        const int rc = SSL_accept(ssl_);
        if (rc == 1) return Status();
        const int error = SSL_get_error(ssl_, rc);
        if (error == SSL_ERROR_WANT_READ) {
            WP_RETURN_IF_ERROR(wait_socket(POLLIN, startup_deadline_ms_, "its TLS handshake"));
        } else if (error == SSL_ERROR_WANT_WRITE) {
            WP_RETURN_IF_ERROR(wait_socket(POLLOUT, startup_deadline_ms_, "its TLS handshake"));
        } else {
            const std::string why = openssl_error_text();
            return Status::invalid("TLS handshake with " + peer_ + " failed" +
                                   (why.empty() ? std::string() : ": " + why));
        }
    }
}

void PgConnection::shutdown() { ::shutdown(fd_, SHUT_RDWR); }

Status PgConnection::recv_some(bool nonblocking, bool& got_any) {
    got_any = false;
    if (in_pos_ > 0 && in_pos_ == in_end_) {
        in_pos_ = in_end_ = 0;
    } else if (in_pos_ > (1u << 20)) {
        std::copy(in_.begin() + static_cast<std::ptrdiff_t>(in_pos_),
                  in_.begin() + static_cast<std::ptrdiff_t>(in_end_), in_.begin());
        in_end_ -= in_pos_;
        in_pos_ = 0;
    }
    // The buffer only grows (zero-filled once), so a receive does not clear
    // kRecvChunk bytes every time.
    if (in_.size() < in_end_ + kRecvChunk) in_.resize(in_end_ + kRecvChunk);
    if (ssl_ != nullptr) {
        for (;;) {
            ERR_clear_error();  // SSL_get_error needs an empty queue
            const int n = SSL_read(ssl_, in_.data() + in_end_, static_cast<int>(kRecvChunk));
            if (n > 0) {
                in_end_ += static_cast<std::size_t>(n);
                got_any = true;
                return Status();
            }
            const int error = SSL_get_error(ssl_, n);
            if (error == SSL_ERROR_WANT_READ) {
                if (nonblocking) return Status();
                WP_RETURN_IF_ERROR(wait_socket(POLLIN, 0, "a message"));
            } else if (error == SSL_ERROR_WANT_WRITE) {
                WP_RETURN_IF_ERROR(wait_socket(POLLOUT, 0, "a message"));
            } else if (error == SSL_ERROR_ZERO_RETURN) {
                return Status::error(StatusKind::kIoError, "connection closed by peer " + peer_);
            } else {
                const std::string why = openssl_error_text();
                return Status::error(StatusKind::kIoError,
                                     "TLS read from " + peer_ + " failed" +
                                         (why.empty() ? std::string(" (connection closed)")
                                                      : ": " + why));
            }
        }
    }
    ssize_t n;
    do {
        n = ::recv(fd_, in_.data() + in_end_, kRecvChunk, nonblocking ? MSG_DONTWAIT : 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (nonblocking && (errno == EAGAIN || errno == EWOULDBLOCK)) return Status();
        return Status::from_errno("recv from " + peer_, errno);
    }
    if (n == 0) return Status::error(StatusKind::kIoError, "connection closed by peer " + peer_);
    in_end_ += static_cast<std::size_t>(n);
    got_any = true;
    return Status();
}

Status PgConnection::fill(std::size_t n) {
    // The time limit of this read: the startup's, or once part of a message
    // is here, the partial message's. Idle between messages: none.
    std::int64_t deadline = in_startup_ ? startup_deadline_ms_ : 0;
    while (in_end_ - in_pos_ < n) {
        if (deadline == 0 && in_end_ > in_pos_) deadline = monotonic_ms() + limits_.message_timeout_ms;
        // Under a limit, what has arrived is read without blocking (the
        // common case on a busy stream) and only an empty socket waits.
        bool got = false;
        Status s = recv_some(deadline != 0, got);
        if (!s) {
            if (in_end_ > in_pos_)
                return Status::error(StatusKind::kInvalidInput, "peer " + peer_ + " hung up in the middle of a message");
            return s;
        }
        if (got || deadline == 0) continue;
        const std::int64_t left = deadline - monotonic_ms();
        pollfd p{fd_, POLLIN, 0};
        const int rc = left > 0 ? ::poll(&p, 1, static_cast<int>(left)) : 0;
        if (rc == 0)
            return Status::invalid(
                "client " + peer_ +
                (in_startup_ ? " did not complete its startup packet within the time limit (" +
                                   std::to_string(limits_.startup_timeout_ms) + " ms)"
                             : " sent part of a message and nothing more within the time limit (" +
                                   std::to_string(limits_.message_timeout_ms) + " ms)"));
    }
    return Status();
}

Result<StartupMessage> PgConnection::read_startup() {
    for (int attempts = 0; attempts < 3; ++attempts) {
        WP_RETURN_IF_ERROR(fill(4));
        const std::uint32_t len = get_be32(in_.data() + in_pos_);
        if (len < 8 || len > kMaxStartupBytes)
            return Status::invalid("invalid startup packet length " + std::to_string(len));
        WP_RETURN_IF_ERROR(fill(len));
        const char* p = in_.data() + in_pos_;
        const std::uint32_t code = get_be32(p + 4);
        in_pos_ += len;
        if (code == kSslRequestCode || code == kGssEncRequestCode) {
            if (len != 8) return Status::invalid("invalid SSLRequest length");
            if (code == kSslRequestCode && tls_ctx_ != nullptr && ssl_ == nullptr) {
                out_.push_back('S');
                WP_RETURN_IF_ERROR(flush());
                WP_RETURN_IF_ERROR(start_tls());
                continue;
            }
            out_.push_back('N');
            WP_RETURN_IF_ERROR(flush());
            continue;
        }
        if (code == kCancelRequestCode) return Status::invalid("cancel requests are not supported");
        if (code >> 16 != 3)
            return Status::invalid("unsupported frontend protocol " + std::to_string(code >> 16) + "." +
                                   std::to_string(code & 0xFFFF));
        StartupMessage m;
        m.protocol = code;
        (void)kProtocolV3;
        std::size_t i = 8;
        while (i < len) {
            const char* key = p + i;
            const void* z = std::memchr(key, '\0', len - i);
            if (!z) return Status::invalid("malformed startup packet");
            std::size_t klen = static_cast<const char*>(z) - key;
            i += klen + 1;
            if (klen == 0) break;  // terminator
            const char* val = p + i;
            const void* z2 = std::memchr(val, '\0', len - i);
            if (!z2) return Status::invalid("malformed startup packet");
            std::size_t vlen = static_cast<const char*>(z2) - val;
            i += vlen + 1;
            m.params[std::string(key, klen)] = std::string(val, vlen);
        }
        in_startup_ = false;
        return m;
    }
    return Status::invalid("too many SSL/GSS negotiation requests");
}

Result<FrontendMessage> PgConnection::read_message() {
    WP_RETURN_IF_ERROR(fill(5));
    const char type = in_[in_pos_];
    const std::uint32_t len = get_be32(in_.data() + in_pos_ + 1);
    if (len < 4) return Status::invalid("invalid message length " + std::to_string(len));
    if (len > max_message_bytes_)
        return Status::invalid("message length " + std::to_string(len) + " exceeds the limit of " +
                               std::to_string(max_message_bytes_) + " bytes");
    WP_RETURN_IF_ERROR(fill(1 + static_cast<std::size_t>(len)));
    FrontendMessage m;
    m.type = type;
    m.payload.assign(in_.data() + in_pos_ + 5, len - 4);
    in_pos_ += 1 + len;
    return m;
}

bool PgConnection::message_ready() {
    auto complete = [this] {
        if (in_end_ - in_pos_ < 5) return false;
        const std::uint32_t len = get_be32(in_.data() + in_pos_ + 1);
        if (len < 4 || len > max_message_bytes_) return true;  // let read_message report it
        return in_end_ - in_pos_ >= 1 + static_cast<std::size_t>(len);
    };
    for (;;) {
        if (complete()) return true;
        bool got = false;
        if (!recv_some(true, got) || !got) return false;
    }
}

void PgConnection::begin_message(char type) {
    out_.push_back(type);
    msg_start_ = out_.size();
    put_be32(out_, 0);  // length placeholder
}

void PgConnection::end_message() {
    const std::uint32_t len = static_cast<std::uint32_t>(out_.size() - msg_start_);
    store_be32(&out_[msg_start_], len);
}

void PgConnection::put_cstr(const std::string& s) {
    out_.append(s);
    out_.push_back('\0');
}

void PgConnection::send_auth_ok() {
    begin_message('R');
    put_be32(out_, 0);
    end_message();
}

void PgConnection::send_auth_sasl(const std::vector<std::string>& mechanisms) {
    begin_message('R');
    put_be32(out_, 10);  // AuthenticationSASL
    for (const auto& m : mechanisms) put_cstr(m);
    out_.push_back('\0');
    end_message();
}

void PgConnection::send_auth_sasl_data(std::uint32_t code, const std::string& data) {
    begin_message('R');
    put_be32(out_, code);  // 11: AuthenticationSASLContinue, 12: AuthenticationSASLFinal
    out_ += data;
    end_message();
}

void PgConnection::send_parameter_status(const std::string& name, const std::string& value) {
    begin_message('S');
    put_cstr(name);
    put_cstr(value);
    end_message();
}

void PgConnection::send_backend_key_data(std::uint32_t pid, std::uint32_t key) {
    begin_message('K');
    put_be32(out_, pid);
    put_be32(out_, key);
    end_message();
}

void PgConnection::send_ready_for_query() {
    begin_message('Z');
    out_.push_back('I');
    end_message();
}

void PgConnection::send_error(const std::string& code, const std::string& message, const char* severity) {
    begin_message('E');
    out_.push_back('S');
    put_cstr(severity);
    out_.push_back('V');
    put_cstr(severity);
    out_.push_back('C');
    put_cstr(code);
    out_.push_back('M');
    put_cstr(message);
    out_.push_back('\0');
    end_message();
}

void PgConnection::send_copy_both_response() {
    begin_message('W');
    out_.push_back(0);  // binary
    put_be16(out_, 0);  // no columns
    end_message();
}

void PgConnection::send_copy_data(const std::uint8_t* data, std::size_t len) {
    begin_message('d');
    out_.append(reinterpret_cast<const char*>(data), len);
    end_message();
}

void PgConnection::send_copy_done() {
    begin_message('c');
    end_message();
}

void PgConnection::send_command_complete(const std::string& tag) {
    begin_message('C');
    put_cstr(tag);
    end_message();
}

void PgConnection::send_empty_query_response() {
    begin_message('I');
    end_message();
}

void PgConnection::send_simple_result(const std::vector<std::string>& columns,
                                      const std::vector<std::vector<std::string>>& rows,
                                      const std::string& tag) {
    std::vector<Column> typed_columns;
    for (const auto& name : columns) typed_columns.push_back(Column{name});
    std::vector<std::vector<std::optional<std::string>>> typed_rows;
    for (const auto& row : rows) typed_rows.emplace_back(row.begin(), row.end());
    send_typed_result(typed_columns, typed_rows, tag);
}

void PgConnection::send_typed_result(const std::vector<Column>& columns,
                                     const std::vector<std::vector<std::optional<std::string>>>& rows,
                                     const std::string& tag) {
    begin_message('T');
    put_be16(out_, static_cast<std::uint16_t>(columns.size()));
    for (const auto& c : columns) {
        put_cstr(c.name);
        put_be32(out_, 0);  // table oid
        put_be16(out_, 0);  // column number
        put_be32(out_, c.type_oid);
        put_be16(out_, 0xFFFF);      // typlen -1 (not used by clients)
        put_be32(out_, 0xFFFFFFFF);  // typmod -1
        put_be16(out_, 0);           // text format
    }
    end_message();
    for (const auto& row : rows) {
        begin_message('D');
        put_be16(out_, static_cast<std::uint16_t>(row.size()));
        for (const auto& v : row) {
            if (!v) {
                put_be32(out_, 0xFFFFFFFF);  // NULL
                continue;
            }
            put_be32(out_, static_cast<std::uint32_t>(v->size()));
            out_.append(*v);
        }
        end_message();
    }
    send_command_complete(tag);
}

Status PgConnection::flush() {
    if (ssl_ != nullptr) {
        std::size_t done = 0;
        while (done < out_.size()) {
            const int chunk = static_cast<int>(std::min<std::size_t>(out_.size() - done, 1 << 20));
            ERR_clear_error();  // SSL_get_error needs an empty queue
            const int n = SSL_write(ssl_, out_.data() + done, chunk);
            if (n > 0) {
                done += static_cast<std::size_t>(n);
                continue;
            }
            const int error = SSL_get_error(ssl_, n);
            Status waited;
            if (error == SSL_ERROR_WANT_WRITE)
                waited = wait_socket(POLLOUT, 0, "a write");
            else if (error == SSL_ERROR_WANT_READ)
                waited = wait_socket(POLLIN, 0, "a write");
            else
                waited = Status::error(StatusKind::kIoError,
                                       "TLS write to " + peer_ + " failed: " + openssl_error_text());
            if (!waited) {
                out_.clear();
                return waited;
            }
        }
        out_.clear();
        return Status();
    }
    std::size_t done = 0;
    while (done < out_.size()) {
        ssize_t n = ::send(fd_, out_.data() + done, out_.size() - done, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            out_.clear();
            return Status::from_errno("send to " + peer_, errno);
        }
        done += static_cast<std::size_t>(n);
    }
    out_.clear();
    return Status();
}

}  // namespace wp::sk
