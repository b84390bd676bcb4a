// The quorum's replication lag for pg_stat_replication (core CommitLagTracker).
#include <catch2/catch.hpp>

#include "walproposer/commit_lag.h"

using wp::CommitLagTracker;

TEST_CASE("the lag is the age of the newest WAL the quorum confirmed", "[commit_lag]") {
    CommitLagTracker t;
    t.wal_flushed(100, 1000);
    t.wal_flushed(200, 2000);
    t.wal_flushed(300, 3000);
    CHECK_FALSE(t.confirmed(50, 3500).has_value());  // nothing that old
    auto lag = t.confirmed(250, 4000);               // 100 and 200 confirmed
    REQUIRE(lag.has_value());
    CHECK(*lag == 2000);                             // 200 was flushed at 2000
    CHECK(t.pending() == 1);
    CHECK_FALSE(t.confirmed(250, 5000).has_value());  // nothing new
    lag = t.confirmed(300, 3100);
    REQUIRE(lag.has_value());
    CHECK(*lag == 100);
    CHECK(t.pending() == 0);
}

TEST_CASE("flushes that do not advance are ignored", "[commit_lag]") {
    CommitLagTracker t;
    t.wal_flushed(100, 1000);
    t.wal_flushed(100, 5000);
    t.wal_flushed(90, 6000);
    CHECK(t.pending() == 1);
    CHECK(*t.confirmed(100, 7000) == 6000);
}

TEST_CASE("a full ring replaces its newest sample and never loses the oldest", "[commit_lag]") {
    CommitLagTracker t;
    for (std::size_t i = 1; i <= CommitLagTracker::kCapacity + 10; ++i)
        t.wal_flushed(i * 10, static_cast<std::int64_t>(i) * 100);
    CHECK(t.pending() == CommitLagTracker::kCapacity);
    CHECK(*t.confirmed(10, 200) == 100);  // the oldest is still the first one
    const wp::Lsn last = (CommitLagTracker::kCapacity + 10) * 10;
    auto lag = t.confirmed(last, static_cast<std::int64_t>(CommitLagTracker::kCapacity + 10) * 100 + 5);
    REQUIRE(lag.has_value());
    CHECK(*lag == 5);  // the newest sample was replaced by the latest flush
    CHECK(t.pending() == 0);
}

TEST_CASE("a clock that steps back gives no negative lag", "[commit_lag]") {
    CommitLagTracker t;
    t.wal_flushed(100, 5000);
    CHECK(*t.confirmed(100, 4000) == 0);
}
