// The commit-wait monitor: when it reports COMMITs waiting for the quorum,
// how often, what it names, and the line when the wait ends.
#include <catch2/catch.hpp>

#include "walproposer/commit_wait.h"

namespace {

wp::ProposerStatus status_with(wp::ProposerState state, wp::Lsn commit) {
    wp::ProposerStatus s;
    s.state = state;
    s.commit_lsn = commit;
    s.quorum = 2;
    for (int i = 0; i < 3; ++i) s.acceptors.emplace_back();
    s.acceptors[0].state = wp::AcceptorConnState::kStreaming;
    s.acceptors[1].state = wp::AcceptorConnState::kOffline;
    s.acceptors[1].last_error = "connection refused";
    s.acceptors[2].state = wp::AcceptorConnState::kConnecting;
    return s;
}

const std::vector<std::string> kNames = {"sk1:5454", "sk2:5454", "sk3:5454"};

}  // namespace

TEST_CASE("commit wait: reported after 5 s, then every 30 s, then its end", "[commit_wait]") {
    wp::CommitWaitMonitor m;
    const auto s = status_with(wp::ProposerState::kElected, 0x1000);
    REQUIRE_FALSE(m.update(1000, 0x2000, s, kNames));
    CHECK(m.waiting_since() == 1000);
    REQUIRE_FALSE(m.update(5999, 0x2000, s, kNames));
    const auto first = m.update(6000, 0x2000, s, kNames);
    REQUIRE(first);
    CHECK(first->find("COMMITs have waited 5.0 s") != std::string::npos);
    CHECK(first->find("confirm 0/2000 (confirmed up to 0/1000)") != std::string::npos);
    CHECK(first->find("1 of 3 safekeepers streaming, 2 needed") != std::string::npos);
    CHECK(first->find("sk2:5454 (offline: connection refused)") != std::string::npos);
    CHECK(first->find("sk3:5454 (connecting)") != std::string::npos);
    CHECK(first->find("sk1:5454") == std::string::npos);
    REQUIRE_FALSE(m.update(35999, 0x2000, s, kNames));
    REQUIRE(m.update(36000, 0x2000, s, kNames));
    CHECK(m.waiting_since() == 1000);
    // Confirmed: one line, and the wait is over.
    const auto done = m.update(40000, 0x2000, status_with(wp::ProposerState::kElected, 0x2000), kNames);
    REQUIRE(done);
    CHECK(done->find("confirmed again after 39.0 s") != std::string::npos);
    CHECK_FALSE(m.waiting());
    REQUIRE_FALSE(m.update(41000, wp::kInvalidLsn, s, kNames));
}

TEST_CASE("commit wait: short waits and no waiters say nothing", "[commit_wait]") {
    wp::CommitWaitMonitor m;
    const auto s = status_with(wp::ProposerState::kElected, 0x1000);
    REQUIRE_FALSE(m.update(0, wp::kInvalidLsn, s, kNames));
    REQUIRE_FALSE(m.update(10, 0x2000, s, kNames));
    // Confirmed within the first 5 s: no "waiting" line, so no "again" line.
    REQUIRE_FALSE(m.update(3000, 0x2000, status_with(wp::ProposerState::kElected, 0x2000), kNames));
    REQUIRE_FALSE(m.update(4000, 0x1000, s, kNames));  // at or below the commit LSN: not waiting
    CHECK_FALSE(m.waiting());
}

TEST_CASE("commit wait: a superseded primary says its COMMITs will never be confirmed",
          "[commit_wait]") {
    wp::CommitWaitMonitor m(wp::CommitWaitMonitor::Settings{1000, 10000});
    auto s = status_with(wp::ProposerState::kSuperseded, 0x1000);
    s.superseded_reason = "fenced: PostgreSQL timeline 1 is below 2";
    REQUIRE_FALSE(m.update(0, 0x2000, s, kNames));
    const auto line = m.update(1000, 0x2000, s, kNames);
    REQUIRE(line);
    CHECK(line->find("superseded (fenced: PostgreSQL timeline 1 is below 2)") != std::string::npos);
    CHECK(line->find("fail over to a standby") != std::string::npos);
}
