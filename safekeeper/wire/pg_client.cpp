#include "wire/pg_client.h"

#include "auth/scram.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "walproposer/byte_order.h"

namespace wp::sk {

namespace {

constexpr std::uint32_t kProtocolVersion3 = 196608;
constexpr std::uint32_t kMaxMessageLength = 64u << 20;

// Connects `fd` within `timeout` (non-blocking connect, then poll).
bool connect_within(int fd, const sockaddr* addr, socklen_t len, std::chrono::milliseconds timeout,
                    int& err) {
    const int flags = ::fcntl(fd, F_GETFL, 0);
    ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    int rc = ::connect(fd, addr, len);
    if (rc != 0 && errno != EINPROGRESS) {
        err = errno;
        return false;
    }
    if (rc != 0) {
        pollfd p{fd, POLLOUT, 0};
        rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
        if (rc == 0) {
            err = ETIMEDOUT;
            return false;
        }
        if (rc < 0) {
            err = errno;
            return false;
        }
        socklen_t elen = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
        if (err != 0) return false;
    }
    ::fcntl(fd, F_SETFL, flags);
    return true;
}

}  // namespace

std::string pg_error_text(const std::string& p) {
    std::string code, msg;
    std::size_t i = 0;
    while (i < p.size() && p[i] != '\0') {
        const char field = p[i++];
        const std::size_t end = p.find('\0', i);
        if (end == std::string::npos) break;
        if (field == 'C') code = p.substr(i, end - i);
        if (field == 'M') msg = p.substr(i, end - i);
        i = end + 1;
    }
    return code.empty() ? msg : code + " " + msg;
}

std::string encode_startup_packet(const std::map<std::string, std::string>& params) {
    std::string body;
    put_be32(body, kProtocolVersion3);
    for (const auto& [key, value] : params) {
        body += key;
        body.push_back('\0');
        body += value;
        body.push_back('\0');
    }
    body.push_back('\0');
    std::string packet;
    put_be32(packet, static_cast<std::uint32_t>(body.size() + 4));
    return packet + body;
}

PgClient::~PgClient() { close(); }

void PgClient::close() {
    if (ssl_ != nullptr) {
        (void)SSL_shutdown(ssl_);
        SSL_free(ssl_);
        ssl_ = nullptr;
    }
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

Status PgClient::start_tls(const std::string& host, const ClientCredentials& credentials) {
    std::string request;
    put_be32(request, 8);
    put_be32(request, 80877103);  // SSLRequest
    WP_RETURN_IF_ERROR(send_all(request));
    char answer = 0;
    WP_RETURN_IF_ERROR(read_exact(&answer, 1));
    if (answer == 'N') {
        if (!credentials.sslrootcert.empty())
            return error("does not offer TLS, and a CA file is configured (--peer-sslrootcert)");
        return Status();
    }
    if (answer != 'S') return error("answered SSLRequest with neither S nor N");
    auto config = TlsClientConfig::create(credentials.sslrootcert);
    if (!config) return error(config.status().message());
    tls_ = *config;
    ssl_ = SSL_new(tls_->context());
    if (ssl_ == nullptr) return error("cannot start TLS: " + openssl_error_text());
    SSL_set_fd(ssl_, fd_);
    SSL_set_tlsext_host_name(ssl_, host.c_str());
    if (tls_->verifies()) {
        in6_addr ip6{};
        in_addr ip4{};
        const bool is_ip = ::inet_pton(AF_INET, host.c_str(), &ip4) == 1 ||
                           ::inet_pton(AF_INET6, host.c_str(), &ip6) == 1;
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
        if (is_ip)
            X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
        else
            X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
    }
    ERR_clear_error();  // SSL_get_error needs an empty queue
    if (SSL_connect(ssl_) != 1) {
        const long verify = SSL_get_verify_result(ssl_);
        std::string why = openssl_error_text();
        if (verify != X509_V_OK) why = X509_verify_cert_error_string(verify);
        return error("TLS handshake failed: " + why);
    }
    return Status();
}

Status PgClient::error(const std::string& what) const {
    return Status::error(StatusKind::kIoError, "peer " + peer_ + ": " + what);
}

Status PgClient::connect(const std::string& host, std::uint16_t port,
                         const std::map<std::string, std::string>& params,
                         std::chrono::milliseconds timeout,
                         const ClientCredentials& credentials) {
    close();
    peer_ = host + ":" + std::to_string(port);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || !res)
        return error("cannot resolve host " + host);
    int last_error = 0;
    for (addrinfo* ai = res; ai && fd_ < 0; ai = ai->ai_next) {
        int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last_error = errno;
            continue;
        }
        if (connect_within(fd, ai->ai_addr, ai->ai_addrlen, timeout, last_error))
            fd_ = fd;
        else
            ::close(fd);
    }
    ::freeaddrinfo(res);
    if (fd_ < 0) return error(std::string("cannot connect: ") + std::strerror(last_error));
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    WP_RETURN_IF_ERROR(start_tls(host, credentials));
    std::map<std::string, std::string> all = params;
    all["user"] = credentials.empty() ? "safekeeper" : credentials.user;
    WP_RETURN_IF_ERROR(send_all(encode_startup_packet(all)));
    std::optional<ScramClientExchange> scram;
    bool server_verified = false;
    for (;;) {
        char type = 0;
        std::string payload;
        WP_RETURN_IF_ERROR(read_message(type, payload));
        if (type == 'E') return error("refused the connection: " + pg_error_text(payload));
        if (type == 'R') {
            const std::uint32_t code = payload.size() >= 4 ? get_be32(payload.data()) : ~0u;
            const std::string data = payload.size() >= 4 ? payload.substr(4) : std::string();
            if (code == 0) {  // AuthenticationOk
                if (scram && !server_verified)
                    return error("ended SCRAM without proving it holds our secret");
                continue;
            }
            if (code == 10) {         // AuthenticationSASL: mechanisms offered
                if (data.find(std::string(kScramMechanism) + '\0') == std::string::npos)
                    return error("offers no SASL mechanism this client speaks");
                if (credentials.empty())
                    return error("asks for a password, and none is configured "
                                 "(--peer-user, --peer-password-file)");
                scram.emplace(credentials.password);
                auto first = scram->client_first();
                if (!first) return error(first.status().message());
                std::string msg = "p";
                put_be32(msg, static_cast<std::uint32_t>(4 + sizeof(kScramMechanism) + 4 +
                                                         first->size()));
                msg += kScramMechanism;
                msg.push_back('\0');
                put_be32(msg, static_cast<std::uint32_t>(first->size()));
                msg += *first;
                WP_RETURN_IF_ERROR(send_all(msg));
                continue;
            }
            if (code == 11 && scram) {  // AuthenticationSASLContinue
                auto final_message = scram->client_final(data);
                if (!final_message) return error(final_message.status().message());
                std::string msg = "p";
                put_be32(msg, static_cast<std::uint32_t>(4 + final_message->size()));
                msg += *final_message;
                WP_RETURN_IF_ERROR(send_all(msg));
                continue;
            }
            if (code == 12 && scram) {  // AuthenticationSASLFinal
                Status verified = scram->check_server_final(data);
                if (!verified) return error(verified.message());
                server_verified = true;
                continue;
            }
            return error("asks for an authentication method this client does not speak");
        }
        if (type == 'Z') return Status();
    }
}

Result<std::vector<PgClient::Row>> PgClient::query(const std::string& sql) {
    if (fd_ < 0) return error("not connected");
    std::string q = "Q";
    put_be32(q, static_cast<std::uint32_t>(4 + sql.size() + 1));
    q += sql;
    q.push_back('\0');
    WP_RETURN_IF_ERROR(send_all(q));
    std::vector<Row> rows;
    std::string failure;
    for (;;) {
        char type = 0;
        std::string payload;
        WP_RETURN_IF_ERROR(read_message(type, payload));
        if (type == 'E') failure = pg_error_text(payload);
        if (type == 'D') {
            if (payload.size() < 2) return error("malformed DataRow");
            const std::size_t columns = get_be16(payload.data());
            std::size_t at = 2;
            Row row;
            for (std::size_t c = 0; c < columns; ++c) {
                if (payload.size() < at + 4) return error("malformed DataRow");
                const std::int32_t len = static_cast<std::int32_t>(get_be32(payload.data() + at));
                at += 4;
                if (len < 0) {
                    row.emplace_back(std::nullopt);
                    continue;
                }
                if (payload.size() < at + static_cast<std::size_t>(len))
                    return error("malformed DataRow");
                row.emplace_back(payload.substr(at, static_cast<std::size_t>(len)));
                at += static_cast<std::size_t>(len);
            }
            rows.push_back(std::move(row));
        }
        if (type == 'Z') break;
    }
    if (!failure.empty()) return Status::invalid("peer " + peer_ + ": " + sql + ": " + failure);
    return rows;
}

Result<std::string> PgClient::query_value(const std::string& sql) {
    auto rows = query(sql);
    if (!rows) return rows.status();
    if (rows->size() != 1 || (*rows)[0].size() != 1 || !(*rows)[0][0])
        return error(sql + ": expected one row with one value");
    return *(*rows)[0][0];
}

Status PgClient::send_all(const std::string& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
        if (ssl_ != nullptr) {
            ERR_clear_error();  // SSL_get_error needs an empty queue
            const int n = SSL_write(ssl_, bytes.data() + done, static_cast<int>(bytes.size() - done));
            if (n <= 0) return error("TLS write failed (or timed out): " + openssl_error_text());
            done += static_cast<std::size_t>(n);
            continue;
        }
        const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return error(errno == EAGAIN ? std::string("send timed out")
                                         : std::string("send: ") + std::strerror(errno));
        }
        done += static_cast<std::size_t>(n);
    }
    return Status();
}

Status PgClient::read_exact(char* buf, std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
        if (ssl_ != nullptr) {
            ERR_clear_error();  // SSL_get_error needs an empty queue
            const int r = SSL_read(ssl_, buf + done, static_cast<int>(n - done));
            if (r <= 0) {
                const int e = SSL_get_error(ssl_, r);
                return error(e == SSL_ERROR_ZERO_RETURN ? std::string("closed the connection")
                                                        : "no answer within the timeout, or a TLS "
                                                          "error: " + openssl_error_text());
            }
            done += static_cast<std::size_t>(r);
            continue;
        }
        const ssize_t r = ::recv(fd_, buf + done, n - done, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return error(errno == EAGAIN ? std::string("no answer within the timeout")
                                         : std::string("recv: ") + std::strerror(errno));
        }
        if (r == 0) return error("closed the connection");
        done += static_cast<std::size_t>(r);
    }
    return Status();
}

Status PgClient::read_message(char& type, std::string& payload) {
    char header[5];
    WP_RETURN_IF_ERROR(read_exact(header, sizeof header));
    type = header[0];
    const std::uint32_t len = get_be32(header + 1);
    if (len < 4 || len > kMaxMessageLength)
        return error("sent a message of invalid length " + std::to_string(len));
    payload.resize(len - 4);
    return read_exact(payload.data(), payload.size());
}

}  // namespace wp::sk
