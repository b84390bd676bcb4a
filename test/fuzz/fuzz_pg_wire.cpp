// Fuzz target: the safekeeper's PostgreSQL v3 protocol server
// (wire/pg_wire.cpp) on bytes from any client: the startup packet
// (SSLRequest, GSSENCRequest, CancelRequest, StartupMessage), then typed
// messages: a SCRAM-SHA-256 authentication of role "fuzz" (the SASL
// messages, wire/authentication.cpp and auth/scram.cpp), and after it
// simple queries go on to the replication command parser. The
// input is written into one end of a socketpair and that end is shut down,
// so a truncated message meets EOF as a peer that hangs up would. Any input
// must end in an error value, never a crash or a hang.
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <fstream>

#include "auth/roles.h"
#include "auth/scram.h"
#include "wire/authentication.h"
#include "wire/pg_wire.h"
#include "wire/replication_command.h"

namespace {

// A roles file with role "fuzz", written once per process.
wp::sk::Authenticator& authenticator() {
    static wp::sk::Authenticator* auth = [] {
        char path[] = "/tmp/fuzz-roles-XXXXXX";
        const int fd = ::mkstemp(path);
        if (fd < 0) std::abort();
        ::close(fd);
        std::ofstream(path) << "fuzz push,read * "
                            << wp::sk::format_scram_secret(*wp::sk::make_scram_secret("pw", 16))
                            << "\n";
        auto* a = new wp::sk::Authenticator(wp::sk::AuthMode::kScram, path);
        if (!a->load().ok()) std::abort();
        ::unlink(path);
        return a;
    }();
    return *auth;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // Larger inputs could fill the socket buffer before the reader runs.
    if (size > 65536) return 0;
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) std::abort();
    std::size_t written = 0;
    while (written < size) {
        const ssize_t n = ::write(sv[1], data + written, size - written);
        if (n <= 0) std::abort();
        written += static_cast<std::size_t>(n);
    }
    ::shutdown(sv[1], SHUT_WR);
    {
        wp::sk::PgConnection conn(sv[0], "fuzz");  // owns sv[0]
        auto startup = conn.read_startup();
        const bool authenticated =
            startup.ok() && wp::sk::authenticate_pg_client(conn, authenticator(), "fuzz").ok();
        for (int i = 0; authenticated && i < 1000; ++i) {
            auto message = conn.read_message();
            if (!message.ok()) break;
            if (message->type == 'Q') {
                std::string query = message->payload;
                if (!query.empty() && query.back() == '\0') query.pop_back();
                (void)wp::sk::parse_replication_command(query);
            }
        }
    }
    ::close(sv[1]);
    return 0;
}
