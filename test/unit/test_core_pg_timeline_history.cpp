// The parser of PostgreSQL timeline history files (pg_timeline_history.h).
#include <catch2/catch.hpp>

#include "walproposer/pg_timeline_history.h"

using namespace wp;

TEST_CASE("pg timeline history: entries, comments, blank and malformed lines", "[core][history]") {
    const std::string content =
        "# comment\n"
        "1\t0/3000158\tno recovery target specified\n"
        "\n"
        "  2\t0/5000000\tbefore 2000-01-01\n"
        "junk line\n"
        "3 1/A";
    const auto entries = parse_pg_timeline_history(content);
    REQUIRE(entries.size() == 3);
    CHECK(entries[0].tli == 1);
    CHECK(entries[0].switchpoint == Lsn{0x3000158});
    CHECK(entries[0].line_end == content.find("\n\n") + 1);
    CHECK(entries[1].tli == 2);
    CHECK(entries[1].switchpoint == Lsn{0x5000000});
    CHECK(entries[2].tli == 3);
    CHECK(entries[2].switchpoint == ((Lsn{1} << 32) | 0xA));
    CHECK(entries[2].line_end == content.size());
}

TEST_CASE("pg timeline history: switch point and next timeline", "[core][history]") {
    const std::string content = "1\t0/3000158\tx\n2\t0/5000000\ty\n";
    CHECK(pg_timeline_switch_point(content, 1, 3) == std::make_pair(Lsn{0x3000158}, 2u));
    CHECK(pg_timeline_switch_point(content, 2, 3) == std::make_pair(Lsn{0x5000000}, 3u));
    CHECK_FALSE(pg_timeline_switch_point(content, 3, 3).has_value());
    CHECK_FALSE(pg_timeline_switch_point("", 1, 2).has_value());
}

TEST_CASE("pg timeline history: prefix of an earlier timeline", "[core][history]") {
    const std::string tli2 = "1\t0/3000158\tno recovery target specified\n";
    const std::string tli3 = tli2 + "# c\n2\t0/5000000\tno recovery target specified\n";
    CHECK(pg_timeline_history_prefix(tli3, 2) == tli2);
    CHECK(pg_timeline_history_prefix(tli3, 3) == tli3);
    CHECK_FALSE(pg_timeline_history_prefix(tli3, 4).has_value());
    CHECK_FALSE(pg_timeline_history_prefix(tli3, 1).has_value());
    CHECK_FALSE(pg_timeline_history_prefix("11\t0/1\tx\n", 2).has_value());
}
