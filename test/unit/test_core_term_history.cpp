#include <catch2/catch.hpp>

#include "walproposer/term_history.h"

using namespace wp;

// The example of Neon's RFC 013 ("term history"), with record n at LSN n (one
// unit each): P1 writes 1.1 everywhere and 1.2-1.4 on A only; P2 (term 2) starts
// at LSN 2 and writes 2.2, 2.3 on C and D; P3 (term 3) starts at 4 and writes
// 3.4 on D.
TEST_CASE("highest common point on the RFC 013 example", "[core][term_history]") {
    const TermHistory a = {{1, 1}};                    // 1.1 1.2 1.3 1.4 -> flush 5
    const TermHistory c = {{1, 1}, {2, 2}};            // 1.1 2.2 2.3     -> flush 4
    const TermHistory d = {{1, 1}, {2, 2}, {3, 4}};    // 1.1 2.2 2.3 3.4 -> flush 5
    const TermHistory e = {{1, 1}};                    // 1.1             -> flush 2
    const TermHistory p3 = {{1, 1}, {2, 2}, {3, 4}};   // P3's history

    SECTION("A diverged after 1.1: truncate 1.2..1.4") {
        auto h = highest_common_point(p3, a, 5);
        CHECK(h.found);
        CHECK(h.term == 1);
        CHECK(h.lsn == 2);
    }
    SECTION("C holds a prefix of P3's WAL: nothing to truncate") {
        auto h = highest_common_point(p3, c, 4);
        CHECK(h.term == 2);
        CHECK(h.lsn == 4);
    }
    SECTION("D equals P3") {
        auto h = highest_common_point(p3, d, 5);
        CHECK(h.term == 3);
        CHECK(h.lsn == 5);
    }
    SECTION("E holds only 1.1") {
        auto h = highest_common_point(p3, e, 2);
        CHECK(h.term == 1);
        CHECK(h.lsn == 2);
    }
    SECTION("entries past the acceptor's flush are ignored") {
        // D persisted P3's history but lost 3.4 (unflushed) in a crash.
        auto h = highest_common_point(p3, d, 4);
        CHECK(h.term == 3);  // term 3 starts exactly at the flush: held, zero bytes
        CHECK(h.lsn == 4);
        auto lost_more = highest_common_point(p3, d, 3);  // lost 2.3 as well
        CHECK(lost_more.term == 2);
        CHECK(lost_more.lsn == 3);
    }
    SECTION("an empty acceptor starts at the proposer's first LSN") {
        auto h = highest_common_point(p3, {}, 0);
        CHECK_FALSE(h.found);
        CHECK(h.lsn == 1);
    }
    SECTION("a new proposer term after D's (P4 elected with donor D)") {
        TermHistory p4 = d;
        p4.push_back({4, 5});
        CHECK(highest_common_point(p4, a, 5).lsn == 2);
        CHECK(highest_common_point(p4, c, 4).lsn == 4);
        CHECK(highest_common_point(p4, d, 5).lsn == 5);
    }
}

TEST_CASE("history up to flush and last log term", "[core][term_history]") {
    const TermHistory h = {{1, 10}, {3, 20}, {5, 30}};
    CHECK(last_log_term(h) == 5);
    CHECK(last_log_term({}) == 0);
    CHECK(history_up_to(h, 25) == TermHistory{{1, 10}, {3, 20}});
    CHECK(history_up_to(h, 30) == h);  // a term starting exactly at flush is held
    CHECK(history_up_to(h, 9).empty());
    CHECK(last_log_term(history_up_to(h, 29)) == 3);
}

TEST_CASE("well-formedness", "[core][term_history]") {
    CHECK(is_well_formed({}));
    CHECK(is_well_formed({{1, 10}, {2, 10}, {4, 30}}));
    CHECK_FALSE(is_well_formed({{2, 10}, {2, 20}}));
    CHECK_FALSE(is_well_formed({{1, 20}, {2, 10}}));
    CHECK_FALSE(is_well_formed({{0, 10}}));
}

TEST_CASE("foreign terms in a quorum's WAL", "[core][term_history]") {
    const TermHistory own = {{2, 100}, {5, 100}};  // terms this primary was elected in
    CHECK_FALSE(first_foreign_entry(own, {{2, 100}, {5, 150}}, 300).has_value());
    // Term 3 wrote bytes [120, 150): not ours.
    auto f = first_foreign_entry(own, {{2, 100}, {3, 120}, {5, 150}}, 300);
    REQUIRE(f.has_value());
    CHECK(f->term == 3);
    CHECK(f->lsn == 120);
    // An empty foreign term contributes no bytes.
    CHECK_FALSE(first_foreign_entry(own, {{2, 100}, {3, 150}, {5, 150}}, 300).has_value());
    CHECK_FALSE(first_foreign_entry(own, {{2, 100}, {7, 300}}, 300).has_value());
    CHECK(first_foreign_entry({}, {{1, 100}}, 101).has_value());
    CHECK(format_history({{1, 0x1000000}}) == "[(1, 0/1000000)]");
}

TEST_CASE("term history file body: formats and parses back; errors name the line", "[core][term_history]") {
    const wp::TermHistoryFileBody body{2, {{1, 0x3000000}, {4, 0x3000100}}};
    const std::string text = wp::format_term_history_body(body);
    CHECK(text == "pg_timeline 2\nterm 1 0/3000000\nterm 4 0/3000100\n");
    auto parsed = wp::parse_term_history_body(text);
    REQUIRE(parsed.ok());
    CHECK(parsed->pg_timeline == 2);
    CHECK(parsed->history == body.history);
    CHECK(wp::parse_term_history_body("pg_timeline 1\n")->history.empty());

    struct Bad {
        const char* text;
        const char* error;
    };
    for (const Bad& bad : {Bad{"", "no pg_timeline line"},
                           Bad{"pg_timeline 1", "line 1 is not terminated"},
                           Bad{"term 1 0/1\n", "line 1: expected pg_timeline"},
                           Bad{"pg_timeline -1\n", "line 1: bad PostgreSQL timeline"},
                           Bad{"pg_timeline 4294967296\n", "line 1: bad PostgreSQL timeline"},
                           Bad{"pg_timeline 1\nterm x 0/1\n", "line 2: bad term or LSN"},
                           Bad{"pg_timeline 1\nterm 1 0/1 extra\n", "line 2: bad term or LSN"},
                           Bad{"pg_timeline 1\nterm 18446744073709551616 0/1\n", "line 2: bad term"},
                           Bad{"pg_timeline 1\nterms 1 0/1\n", "line 2: expected term"},
                           Bad{"pg_timeline 1\nterm 4 0/2\nterm 1 0/3\n", "not well formed"}}) {
        INFO(bad.text);
        auto r = wp::parse_term_history_body(bad.text);
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().kind() == wp::StatusKind::kCorrupt);
        CHECK(r.status().message().find(bad.error) != std::string::npos);
    }
}
