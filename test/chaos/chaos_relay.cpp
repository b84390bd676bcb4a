// chaos-relay: a TCP relay for the chaos harness (TEST ONLY, never
// installed) that can delay the bytes it carries.
//
//   chaos-relay --listen PORT --target PORT --control FILE
//
// Listens on 127.0.0.1:PORT; every accepted connection gets its own
// connection to 127.0.0.1:TARGET and the bytes are copied both ways. On
// SIGHUP the relay reads FILE, which holds a delay in milliseconds: from
// then on every chunk read from either side is written to the other side no
// earlier than that many milliseconds after it was read (bytes keep their
// order; a shorter delay never lets a chunk overtake an earlier one). A
// missing or empty FILE means no delay.
//
// The kernel of this test machine has no `tc netem` queueing discipline, so
// delay is made here, in user space, on the one link that goes through this
// relay; loss and partitions are made with nftables rules on its port.
//
// One thread, epoll, non-blocking sockets. At most kMaxQueued bytes wait per
// direction; beyond that the relay stops reading from the sending side, so
// TCP flow control reaches the sender. Ends on SIGTERM or SIGINT.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

constexpr size_t kMaxQueued = 4 << 20;
constexpr size_t kReadChunk = 64 << 10;

int64_t now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

struct Chunk {
    int64_t due_ms;
    std::string bytes;
    size_t written = 0;
};

// Bytes read from `from` that wait to be written to `to`.
struct Direction {
    int from = -1;
    int to = -1;
    std::deque<Chunk> queue;
    size_t queued = 0;
    bool eof = false;       // `from` reached end of file
    bool shut = false;      // shutdown(to, SHUT_WR) done
    int64_t last_due = 0;   // keeps due times monotonic
};

// One accepted connection and the relay's connection to the target.
struct Link {
    int client = -1;
    int server = -1;
    bool connected = false;  // the connection to the target completed
    Direction up;            // client -> server
    Direction down;          // server -> client
    bool dead = false;
};

int64_t g_delay_ms = 0;
std::string g_control;

void read_control() {
    std::ifstream in(g_control);
    long long ms = 0;
    if (in && (in >> ms) && ms >= 0) {
        g_delay_ms = ms;
    } else {
        g_delay_ms = 0;
    }
    std::fprintf(stderr, "chaos-relay: delay %lld ms\n", static_cast<long long>(g_delay_ms));
}

bool set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

sockaddr_in loopback(int port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
}

class Relay {
public:
    Relay(int listen_fd, int target_port, int epoll_fd, int signal_fd)
        : listen_fd_(listen_fd), target_port_(target_port), ep_(epoll_fd), sig_(signal_fd) {}

    int run() {
        for (;;) {
            int timeout = next_timeout();
            epoll_event events[64];
            int n = epoll_wait(ep_, events, 64, timeout);
            if (n < 0) {
                if (errno == EINTR) continue;
                std::perror("chaos-relay: epoll_wait");
                return 1;
            }
            for (int i = 0; i < n; ++i) {
                int fd = events[i].data.fd;
                if (fd == sig_) {
                    if (!handle_signal()) return 0;
                } else if (fd == listen_fd_) {
                    accept_all();
                } else {
                    auto it = by_fd_.find(fd);
                    if (it != by_fd_.end()) on_event(*it->second, fd, events[i].events);
                }
            }
            // Every link gets a pass: due chunks are written, interests set.
            for (auto it = links_.begin(); it != links_.end();) {
                Link& link = **it;
                if (!link.dead) pump(link);
                if (link.dead) {
                    close_link(link);
                    it = links_.erase(it);
                } else {
                    ++it;
                }
            }
        }
    }

private:
    bool handle_signal() {
        signalfd_siginfo info{};
        while (read(sig_, &info, sizeof info) == sizeof info) {
            if (info.ssi_signo == SIGHUP) {
                read_control();
            } else {
                return false;  // SIGTERM, SIGINT
            }
        }
        return true;
    }

    void accept_all() {
        for (;;) {
            int client = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (client < 0) return;  // EAGAIN, or a connection that went away
            int server = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (server < 0) {
                close(client);
                continue;
            }
            int one = 1;
            setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            sockaddr_in addr = loopback(target_port_);
            auto link = std::make_unique<Link>();
            link->client = client;
            link->server = server;
            link->up.from = client;
            link->up.to = server;
            link->down.from = server;
            link->down.to = client;
            if (connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
                link->connected = true;
            } else if (errno != EINPROGRESS) {
                close(client);
                close(server);
                continue;
            }
            add(client, *link);
            add(server, *link);
            links_.push_back(std::move(link));
        }
    }

    void add(int fd, Link& link) {
        epoll_event ev{};
        ev.events = 0;
        ev.data.fd = fd;
        epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
        by_fd_[fd] = &link;
        interest_[fd] = 0;
    }

    void on_event(Link& link, int fd, uint32_t events) {
        if (fd == link.server && !link.connected) {
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) {
                link.dead = true;  // the target refused or is unreachable
                return;
            }
            link.connected = true;
        }
        if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
            read_side(link, fd == link.client ? link.up : link.down);
        }
    }

    void read_side(Link& link, Direction& dir) {
        while (!dir.eof && dir.queued < kMaxQueued) {
            std::string buf(kReadChunk, '\0');
            ssize_t n = read(dir.from, buf.data(), buf.size());
            if (n > 0) {
                buf.resize(static_cast<size_t>(n));
                int64_t due = now_ms() + g_delay_ms;
                if (due < dir.last_due) due = dir.last_due;
                dir.last_due = due;
                dir.queued += buf.size();
                dir.queue.push_back(Chunk{due, std::move(buf), 0});
            } else if (n == 0) {
                dir.eof = true;
            } else {
                if (errno == EAGAIN || errno == EWOULDBLOCK) return;
                if (errno == EINTR) continue;
                link.dead = true;  // reset by the peer: end both sides
                return;
            }
        }
    }

    // Writes what is due in one direction; false on a write error.
    bool flush(Direction& dir) {
        int64_t now = now_ms();
        while (!dir.queue.empty() && dir.queue.front().due_ms <= now) {
            Chunk& c = dir.queue.front();
            ssize_t n = send(dir.to, c.bytes.data() + c.written, c.bytes.size() - c.written,
                             MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
                if (errno == EINTR) continue;
                return false;
            }
            c.written += static_cast<size_t>(n);
            dir.queued -= static_cast<size_t>(n);
            if (c.written == c.bytes.size()) dir.queue.pop_front();
        }
        if (dir.eof && dir.queue.empty() && !dir.shut) {
            shutdown(dir.to, SHUT_WR);
            dir.shut = true;
        }
        return true;
    }

    static bool waiting_write(const Direction& dir, int64_t now) {
        return !dir.queue.empty() && dir.queue.front().due_ms <= now;
    }

    void pump(Link& link) {
        if (link.connected) {
            if (!flush(link.up) || !flush(link.down)) {
                link.dead = true;
                return;
            }
            if (link.up.shut && link.down.shut) {
                link.dead = true;  // both sides closed and everything delivered
                return;
            }
        }
        int64_t now = now_ms();
        // Interests: read while there is room, write while something due waits.
        uint32_t client_ev = 0;
        uint32_t server_ev = 0;
        if (!link.connected) {
            server_ev = EPOLLOUT;
        } else {
            if (!link.up.eof && link.up.queued < kMaxQueued) client_ev |= EPOLLIN;
            if (!link.down.eof && link.down.queued < kMaxQueued) server_ev |= EPOLLIN;
            if (waiting_write(link.up, now)) server_ev |= EPOLLOUT;
            if (waiting_write(link.down, now)) client_ev |= EPOLLOUT;
        }
        set_interest(link.client, client_ev);
        set_interest(link.server, server_ev);
    }

    void set_interest(int fd, uint32_t events) {
        if (interest_[fd] == events) return;
        epoll_event ev{};
        ev.events = events;
        ev.data.fd = fd;
        epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &ev);
        interest_[fd] = events;
    }

    // Milliseconds until the earliest chunk that waits only for its time.
    int next_timeout() const {
        int64_t now = now_ms();
        int64_t best = -1;
        for (const auto& link : links_) {
            for (const Direction* dir : {&link->up, &link->down}) {
                if (dir->queue.empty()) continue;
                int64_t wait = dir->queue.front().due_ms - now;
                if (wait < 0) wait = 0;
                if (best < 0 || wait < best) best = wait;
            }
        }
        return best < 0 ? 1000 : static_cast<int>(best);
    }

    void close_link(Link& link) {
        for (int fd : {link.client, link.server}) {
            epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
            by_fd_.erase(fd);
            interest_.erase(fd);
            close(fd);
        }
    }

    int listen_fd_;
    int target_port_;
    int ep_;
    int sig_;
    std::vector<std::unique_ptr<Link>> links_;
    std::map<int, Link*> by_fd_;
    std::map<int, uint32_t> interest_;
};

int usage(const char* why) {
    if (why) std::fprintf(stderr, "chaos-relay: %s\n", why);
    std::fprintf(stderr,
                 "usage: chaos-relay --listen PORT --target PORT --control FILE\n"
                 "  relays 127.0.0.1:PORT to 127.0.0.1:TARGET; on SIGHUP reads the delay\n"
                 "  in milliseconds from FILE (test tool of the chaos harness)\n");
    return why ? 2 : 0;
}

bool parse_port(const char* text, int* port) {
    char* end = nullptr;
    long value = std::strtol(text, &end, 10);
    if (!end || *end != '\0' || value < 1 || value > 65535) return false;
    *port = static_cast<int>(value);
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    int listen_port = 0;
    int target_port = 0;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") return usage(nullptr);
        if (i + 1 >= argc) return usage(("missing value for " + arg).c_str());
        const char* value = argv[++i];
        if (arg == "--listen") {
            if (!parse_port(value, &listen_port)) return usage("--listen needs a port");
        } else if (arg == "--target") {
            if (!parse_port(value, &target_port)) return usage("--target needs a port");
        } else if (arg == "--control") {
            g_control = value;
        } else {
            return usage(("unknown option " + arg).c_str());
        }
    }
    if (listen_port == 0 || target_port == 0 || g_control.empty()) {
        return usage("--listen, --target and --control are required");
    }

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    int sig = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

    int listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr = loopback(listen_port);
    if (bind(listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(listen_fd, 64) != 0) {
        std::fprintf(stderr, "chaos-relay: cannot listen on 127.0.0.1:%d: %s\n", listen_port,
                     std::strerror(errno));
        return 1;
    }
    read_control();

    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (int fd : {listen_fd, sig}) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    if (!set_nonblocking(listen_fd) || sig < 0 || ep < 0) {
        std::perror("chaos-relay: setup");
        return 1;
    }
    Relay relay(listen_fd, target_port, ep, sig);
    return relay.run();
}
