// Host name resolution off the caller's thread, so that a safekeeper whose
// name resolves slowly (or never) cannot stall the walproposer worker's loop
// (or pg_walproposer_sync's): libpq resolves a "host" inside
// PQconnectStartParams, blocking, before any non-blocking step begins.
//
// A lookup runs getaddrinfo() on its own detached thread, created with every
// signal blocked (PostgreSQL's signal handlers run only on the process's main
// thread) and touching nothing but its own request record: no PostgreSQL
// function, no memory context, no elog. While a lookup of a host and port is
// in flight, a new request for the same pair joins it instead of starting
// another thread, so a name that never answers costs one thread per distinct
// name, however often the caller retries. Nothing is cached: every request
// made after a lookup finished starts a new one (DNS changes are seen, as
// libpq would see them).
//
// Thread-safety: every function may be called from any thread. Lifetime: a
// NameLookup is shared by the requester and the lookup's thread; dropping it
// abandons the result (the thread finishes on its own and frees it).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace wp::pg {

// One lookup's outcome, filled by the lookup's thread.
class NameLookup {
public:
    // True once the lookup finished, successfully or not.
    bool done() const;
    // After done(): the numeric addresses libpq's "hostaddr" takes, comma
    // separated, in getaddrinfo's order without duplicates; empty on failure.
    std::string addresses() const;
    // After done(): why the name did not resolve (getaddrinfo's message);
    // empty on success.
    std::string error() const;

private:
    friend class NameResolverAccess;
    mutable std::mutex mutex_;
    bool done_ = false;
    std::string addresses_;
    std::string error_;
};

// True when `host` needs no lookup: a numeric IPv4 or IPv6 address, or a
// Unix-domain socket directory (starts with '/' or '@'), or empty.
bool host_needs_no_lookup(const std::string& host);

// Starts resolving host:port (or joins the lookup already in flight for it)
// and returns its record. When a lookup finishes, `wake` (if not null) is
// called on the lookup's thread; it must be safe to call from any thread
// (the worker passes a function that sets its latch). A thread that cannot
// be created gives a lookup that is already done, with the reason.
std::shared_ptr<NameLookup> resolve_host_async(const std::string& host, std::uint16_t port,
                                               void (*wake)());

}  // namespace wp::pg
