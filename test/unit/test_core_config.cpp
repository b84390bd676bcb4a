#include <catch2/catch.hpp>

#include "walproposer/config.h"
#include "walproposer/timeline_key.h"

using wp::parse_hex_id;
using wp::parse_safekeeper_list;

TEST_CASE("safekeeper list parses host:port entries", "[config]") {
    auto list = parse_safekeeper_list("127.0.0.1:5454, sk-2.example.com:5455,[::1]:6000");
    REQUIRE(list);
    REQUIRE(list->size() == 3);
    CHECK((*list)[0].host == "127.0.0.1");
    CHECK((*list)[0].port == 5454);
    CHECK((*list)[1].host == "sk-2.example.com");
    CHECK((*list)[2].host == "::1");
    CHECK((*list)[2].to_string() == "[::1]:6000");
    auto empty = parse_safekeeper_list("  ");
    REQUIRE(empty);
    CHECK(empty->empty());
}

TEST_CASE("safekeeper list rejects bad entries with a reason", "[config]") {
    struct Case {
        const char* text;
        const char* reason;
    };
    for (const Case& c : {Case{"localhost", "port missing"}, Case{"localhost:", "port must be"},
                          Case{"localhost:0", "port must be"}, Case{"h:65536", "port must be"},
                          Case{"h:12a", "port must be"}, Case{":5454", "empty host"},
                          Case{"a:1,,b:2", "empty entry"}, Case{"a:1,a:1", "listed twice"},
                          Case{"a b:1", "bad character"}, Case{"[::1:5", "ipv6"}}) {
        INFO(c.text);
        auto parsed = parse_safekeeper_list(c.text);
        REQUIRE_FALSE(parsed);
        CHECK_THAT(parsed.message(), Catch::Contains(c.reason, Catch::CaseSensitive::No));
    }
    std::string many;
    for (int i = 0; i < 33; ++i) many += "h:" + std::to_string(1000 + i) + ",";
    many.pop_back();
    CHECK_THAT(parse_safekeeper_list(many).message(), Catch::Contains("more than 32"));
}

TEST_CASE("hex ids are 32 hex digits, stored lower-case", "[config]") {
    auto id = parse_hex_id("0123456789ABCDEF0123456789abcdef");
    REQUIRE(id);
    CHECK(*id == "0123456789abcdef0123456789abcdef");
    CHECK_FALSE(parse_hex_id("0123"));
    CHECK_FALSE(parse_hex_id("0123456789abcdef0123456789abcdeg"));
    CHECK(wp::default_id_from_system_id(0x7312A1B2C3D4E5F6ULL) ==
          "00000000000000007312a1b2c3d4e5f6");
}
