#include "wire/server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cstring>

#include "wire/connection.h"

namespace wp::sk {

Result<std::pair<std::string, std::uint16_t>> parse_host_port(const std::string& text) {
    auto colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
        return Status::invalid("expected HOST:PORT, got '" + text + "'");
    std::string host = text.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    const std::string port_text = text.substr(colon + 1);
    unsigned long port = 0;
    for (char c : port_text) {
        if (c < '0' || c > '9') return Status::invalid("invalid port in '" + text + "'");
        port = port * 10 + static_cast<unsigned long>(c - '0');
        if (port > 65535) return Status::invalid("port out of range in '" + text + "'");
    }
    return std::make_pair(host, static_cast<std::uint16_t>(port));
}

PgServer::PgServer(TimelineRegistry& registry, Authenticator& authenticator,
                   std::size_t max_connections, ConnectionLimits limits)
    : registry_(registry),
      authenticator_(authenticator),
      max_connections_(max_connections),
      limits_(limits) {}

PgServer::~PgServer() {
    stop();
    if (wake_pipe_[0] >= 0) ::close(wake_pipe_[0]);
    if (wake_pipe_[1] >= 0) ::close(wake_pipe_[1]);
}

Status PgServer::listen(const std::string& host, std::uint16_t port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    const std::string port_str = std::to_string(port);
    int rc = ::getaddrinfo(host.c_str(), port_str.c_str(), &hints, &res);
    if (rc != 0) return Status::invalid("cannot resolve listen address " + host + ": " + gai_strerror(rc));
    Status last = Status::invalid("no usable address for " + host);
    for (addrinfo* ai = res; ai; ai = ai->ai_next) {
        int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last = Status::from_errno("socket", errno);
            continue;
        }
        int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, 128) != 0) {
            last = Status::from_errno("cannot listen on " + host + ":" + port_str, errno);
            ::close(fd);
            continue;
        }
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
        bound_port_ = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                                     : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
        listen_fd_ = fd;
        break;
    }
    ::freeaddrinfo(res);
    if (listen_fd_ < 0) return last;
    if (::pipe2(wake_pipe_, O_CLOEXEC) != 0) return Status::from_errno("pipe", errno);
    return Status();
}

void PgServer::start() {
    accept_thread_ = std::thread([this] { accept_loop(); });
}

void PgServer::accept_loop() {
    for (;;) {
        pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
        int n = ::poll(fds, 2, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            spdlog::error("poll on listener: {}", std::strerror(errno));
            return;
        }
        if (stopping_ || (fds[1].revents & POLLIN)) return;
        if (!(fds[0].revents & POLLIN)) continue;
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) continue;
            spdlog::error("accept: {}", std::strerror(errno));
            ::usleep(100000);  // e.g. EMFILE: back off instead of spinning
            continue;
        }
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        char host[NI_MAXHOST] = "?", serv[NI_MAXSERV] = "?";
        ::getnameinfo(reinterpret_cast<sockaddr*>(&ss), len, host, sizeof host, serv, sizeof serv,
                      NI_NUMERICHOST | NI_NUMERICSERV);
        std::string peer = std::string(host) + ":" + serv;
        std::uint64_t id;
        {
            std::lock_guard<std::mutex> g(mutex_);
            id = next_id_++;
            if (connections_.size() >= max_connections_) {
                PgConnection conn(fd, peer);
                conn.send_error(sqlstate::kTooManyConnections, "too many connections", "FATAL");
                (void)conn.flush();
                spdlog::warn("rejected connection from {}: too many connections", peer);
                continue;
            }
            connections_[id] = nullptr;
            active_++;
            total_++;
        }
        std::thread([this, fd, peer, id] { run_connection(fd, peer, id); }).detach();
    }
}

void PgServer::run_connection(int fd, std::string peer, std::uint64_t id) {
    {
        PgConnection conn(fd, peer, limits_);
        {
            std::lock_guard<std::mutex> g(mutex_);
            connections_[id] = &conn;
            if (stopping_) conn.shutdown();
        }
        if (tls_ != nullptr) conn.offer_tls(tls_->pg_context());
        ConnectionContext ctx{&registry_, &authenticator_, id, tls_required_};
        serve_connection(conn, ctx);
        std::lock_guard<std::mutex> g(mutex_);
        connections_.erase(id);
    }
    std::lock_guard<std::mutex> g(mutex_);
    active_--;
    all_done_.notify_all();
}

void PgServer::stop() {
    if (stopping_.exchange(true)) return;
    if (wake_pipe_[1] >= 0) {
        char c = 1;
        (void)!::write(wake_pipe_[1], &c, 1);
    }
    if (accept_thread_.joinable()) accept_thread_.join();
    if (listen_fd_ >= 0) {
        ::close(listen_fd_);
        listen_fd_ = -1;
    }
    std::unique_lock<std::mutex> g(mutex_);
    for (auto& [id, conn] : connections_)
        if (conn) conn->shutdown();
    all_done_.wait(g, [this] { return active_.load() == 0; });
}

}  // namespace wp::sk
