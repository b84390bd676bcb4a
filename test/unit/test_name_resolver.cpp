// The worker's off-loop host name resolution (src/pg/name_resolver.h).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "../../src/pg/name_resolver.h"

namespace {

bool wait_done(const wp::pg::NameLookup& lookup) {
    for (int i = 0; i < 1000 && !lookup.done(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return lookup.done();
}

std::atomic<int> g_wakes{0};
void count_wake() { ++g_wakes; }

}  // namespace

TEST_CASE("numeric addresses and socket directories need no lookup", "[name_resolver]") {
    CHECK(wp::pg::host_needs_no_lookup("127.0.0.1"));
    CHECK(wp::pg::host_needs_no_lookup("::1"));
    CHECK(wp::pg::host_needs_no_lookup("fe80::1"));
    CHECK(wp::pg::host_needs_no_lookup("/var/run/postgresql"));
    CHECK(wp::pg::host_needs_no_lookup(""));
    CHECK_FALSE(wp::pg::host_needs_no_lookup("localhost"));
    CHECK_FALSE(wp::pg::host_needs_no_lookup("sk1.example.com"));
    CHECK_FALSE(wp::pg::host_needs_no_lookup("127.0.0.1.nip.io"));
}

TEST_CASE("a host name resolves on another thread to its numeric addresses", "[name_resolver]") {
    g_wakes = 0;
    auto lookup = wp::pg::resolve_host_async("localhost", 5432, count_wake);
    REQUIRE(wait_done(*lookup));
    CHECK(lookup->error().empty());
    const std::string addresses = lookup->addresses();
    CHECK((addresses.find("127.0.0.1") != std::string::npos ||
           addresses.find("::1") != std::string::npos));
    CHECK(addresses.find(' ') == std::string::npos);
    // The wake-up runs on the lookup's thread after the result is published.
    for (int i = 0; i < 1000 && g_wakes == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    CHECK(g_wakes == 1);
}

// A name that fails, and one that never answers, are covered by TAP 014 (an
// LD_PRELOAD resolver): here a failing lookup could wait on the machine's DNS.
