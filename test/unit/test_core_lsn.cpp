#include <catch2/catch.hpp>

#include "walproposer/lsn.h"

using wp::format_lsn;
using wp::parse_lsn;

TEST_CASE("LSN formats like PostgreSQL", "[lsn]") {
    CHECK(format_lsn(0) == "0/0");
    CHECK(format_lsn(0x16B3748) == "0/16B3748");
    CHECK(format_lsn(0x1000000000ULL) == "10/0");
    CHECK(format_lsn(0xFFFFFFFFFFFFFFFFULL) == "FFFFFFFF/FFFFFFFF");
}

TEST_CASE("LSN parse round-trips", "[lsn]") {
    for (wp::Lsn lsn : {0ULL, 0x16B3748ULL, 0x1000000000ULL, 0xABCDEF0123456789ULL}) {
        auto parsed = parse_lsn(format_lsn(lsn));
        REQUIRE(parsed);
        CHECK(*parsed == lsn);
    }
    CHECK(parse_lsn("0/16b3748") == std::optional<wp::Lsn>(0x16B3748));
}

TEST_CASE("LSN parse rejects bad strings", "[lsn]") {
    for (const char* bad : {"", "/", "0/", "/0", "016B3748", "0/16B3748 ", " 0/1", "0/-1",
                            "0/+1", "123456789/0", "0/123456789", "0/1/2", "g/0", "0x0/0"}) {
        INFO(bad);
        CHECK_FALSE(parse_lsn(bad));
    }
}
