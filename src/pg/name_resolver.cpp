#include "name_resolver.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <map>
#include <system_error>
#include <thread>
#include <vector>

namespace wp::pg {

// The lookup's thread is the only writer of a NameLookup; this class is its
// one door into the private fields.
class NameResolverAccess {
public:
    static void finish(NameLookup& lookup, std::string addresses, std::string error) {
        std::lock_guard<std::mutex> lock(lookup.mutex_);
        lookup.addresses_ = std::move(addresses);
        lookup.error_ = std::move(error);
        lookup.done_ = true;
    }
};

bool NameLookup::done() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return done_;
}

std::string NameLookup::addresses() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return addresses_;
}

std::string NameLookup::error() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return error_;
}

bool host_needs_no_lookup(const std::string& host) {
    if (host.empty() || host[0] == '/' || host[0] == '@') return true;
    unsigned char buffer[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host.c_str(), buffer) == 1 ||
           inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

namespace {

// Lookups in flight, by "host:port". Allocated once and never freed: lookup
// threads may still be running when the process exits.
struct InFlight {
    std::mutex mutex;
    std::map<std::string, std::shared_ptr<NameLookup>> by_key;
};

InFlight& in_flight() {
    static InFlight* table = new InFlight();
    return *table;
}

// getaddrinfo, then every distinct numeric address in its order.
void run_lookup(const std::string& key, const std::string& host, std::uint16_t port,
                std::shared_ptr<NameLookup> lookup, void (*wake)()) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    const std::string service = std::to_string(port);
    const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &list);
    std::string addresses, error;
    if (rc != 0) {
        error = std::string("could not translate host name \"") + host +
                "\" to address: " + gai_strerror(rc);
    } else {
        std::vector<std::string> seen;
        for (addrinfo* a = list; a != nullptr; a = a->ai_next) {
            char text[INET6_ADDRSTRLEN] = {0};
            const void* raw = nullptr;
            if (a->ai_family == AF_INET)
                raw = &reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr;
            else if (a->ai_family == AF_INET6)
                raw = &reinterpret_cast<const sockaddr_in6*>(a->ai_addr)->sin6_addr;
            if (raw == nullptr || inet_ntop(a->ai_family, raw, text, sizeof text) == nullptr) continue;
            bool duplicate = false;
            for (const auto& s : seen) duplicate = duplicate || s == text;
            if (duplicate) continue;
            seen.emplace_back(text);
            if (!addresses.empty()) addresses += ',';
            addresses += text;
        }
        freeaddrinfo(list);
        if (addresses.empty())
            error = std::string("host name \"") + host + "\" has no IPv4 or IPv6 address";
    }
    {
        InFlight& table = in_flight();
        std::lock_guard<std::mutex> lock(table.mutex);
        auto at = table.by_key.find(key);
        if (at != table.by_key.end() && at->second == lookup) table.by_key.erase(at);
    }
    NameResolverAccess::finish(*lookup, std::move(addresses), std::move(error));
    if (wake != nullptr) wake();
}

}  // namespace

std::shared_ptr<NameLookup> resolve_host_async(const std::string& host, std::uint16_t port,
                                               void (*wake)()) {
    const std::string key = host + ":" + std::to_string(port);
    InFlight& table = in_flight();
    std::lock_guard<std::mutex> lock(table.mutex);
    if (auto at = table.by_key.find(key); at != table.by_key.end()) return at->second;

    auto lookup = std::make_shared<NameLookup>();
    // The thread inherits the creating thread's signal mask: block them all
    // while creating it, so no PostgreSQL signal handler ever runs there.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    std::string failure;
    try {
        std::thread(run_lookup, key, host, port, lookup, wake).detach();
    } catch (const std::system_error& e) {
        failure = std::string("cannot start resolving host name \"") + host + "\": " + e.what();
    }
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    if (!failure.empty()) {
        NameResolverAccess::finish(*lookup, "", std::move(failure));
        return lookup;
    }
    table.by_key.emplace(key, lookup);
    return lookup;
}

}  // namespace wp::pg
