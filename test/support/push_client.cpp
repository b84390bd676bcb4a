#include "support/push_client.h"

#include "wire/pg_client.h"
#include "wire/pg_wire.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "walproposer/byte_order.h"

namespace wp::sk {

PushClient::~PushClient() { close(); }

void PushClient::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

Status PushClient::connect(const std::string& host, std::uint16_t port,
                           const std::map<std::string, std::string>& params) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0)
        return Status::invalid("cannot resolve " + host);
    Status last = Status::invalid("no address");
    for (addrinfo* ai = res; ai; ai = ai->ai_next) {
        int fd = ::socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) continue;
        if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            fd_ = fd;
            break;
        }
        last = Status::from_errno("connect", errno);
        ::close(fd);
    }
    ::freeaddrinfo(res);
    if (fd_ < 0) return last;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::map<std::string, std::string> all = params;
    all.emplace("user", "walproposer");
    WP_RETURN_IF_ERROR(send_raw(encode_startup_packet(all)));
    for (;;) {
        char type;
        std::string payload;
        WP_RETURN_IF_ERROR(read_backend_message(type, payload));
        if (type == 'E') return Status::invalid("server error: " + error_text(payload));
        if (type == 'Z') return Status();
    }
}

Status PushClient::start_wal_push() {
    std::string q = "Q";
    put_be32(q, static_cast<std::uint32_t>(4 + std::strlen("START_WAL_PUSH") + 1));
    q += "START_WAL_PUSH";
    q.push_back('\0');
    WP_RETURN_IF_ERROR(send_raw(q));
    char type;
    std::string payload;
    WP_RETURN_IF_ERROR(read_backend_message(type, payload));
    if (type == 'E') return Status::invalid("server error: " + error_text(payload));
    if (type != 'W') return Status::invalid(std::string("expected CopyBothResponse, got ") + type);
    return Status();
}

Result<std::string> PushClient::simple_query(const std::string& sql) {
    std::string q = "Q";
    put_be32(q, static_cast<std::uint32_t>(4 + sql.size() + 1));
    q += sql;
    q.push_back('\0');
    WP_RETURN_IF_ERROR(send_raw(q));
    std::string error;
    for (;;) {
        char type;
        std::string payload;
        WP_RETURN_IF_ERROR(read_backend_message(type, payload));
        if (type == 'E') error = error_text(payload);
        if (type == 'Z') return error;
    }
}

Status PushClient::send(const Message& m) {
    const auto bytes = encode(m);
    out_.push_back('d');
    put_be32(out_, static_cast<std::uint32_t>(bytes.size() + 4));
    out_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (out_.size() > (1u << 20)) return flush();
    return Status();
}

Status PushClient::flush() {
    Status s = send_raw(out_);
    out_.clear();
    return s;
}

Status PushClient::send_raw(const std::string& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return Status::from_errno("send", errno);
        }
        done += static_cast<std::size_t>(n);
    }
    return Status();
}

Status PushClient::read_exact(char* buf, std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
        ssize_t r = ::recv(fd_, buf + done, n - done, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return Status::from_errno("recv", errno);
        }
        if (r == 0) return Status::error(StatusKind::kIoError, "connection closed by server");
        done += static_cast<std::size_t>(r);
    }
    return Status();
}

Status PushClient::read_backend_message(char& type, std::string& payload) {
    char hdr[5];
    WP_RETURN_IF_ERROR(read_exact(hdr, 5));
    type = hdr[0];
    const std::uint32_t len = get_be32(hdr + 1);
    if (len < 4 || len > (64u << 20)) return Status::invalid("bad length from server");
    payload.resize(len - 4);
    return read_exact(payload.data(), payload.size());
}

std::string PushClient::error_text(const std::string& p) { return pg_error_text(p); }

Result<Message> PushClient::receive() {
    WP_RETURN_IF_ERROR(flush());
    for (;;) {
        char type;
        std::string payload;
        WP_RETURN_IF_ERROR(read_backend_message(type, payload));
        if (type == 'E') return Status::invalid("server error: " + error_text(payload));
        if (type != 'd') continue;
        auto m = decode(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size());
        if (!m) return Status::invalid("cannot decode server message: " + m.message());
        return std::move(*m);
    }
}

}  // namespace wp::sk
