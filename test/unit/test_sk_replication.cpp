// Unit tests of the WAL sender's pure parts: the replication command parser,
// timeline-history prefixes and the consumer set (feedback minimum, slot
// positions, eventfd notification).
#include <catch2/catch.hpp>

#include <sys/eventfd.h>
#include <unistd.h>

#include "wire/replication_command.h"
#include "send_wal/replication_commands.h"
#include "timeline/wal_consumers.h"

using namespace wp;
using namespace wp::sk;

namespace {
ReplicationCommand ok(const std::string& q) {
    auto p = parse_replication_command(q);
    INFO(q << " -> " << p.error);
    REQUIRE(p.error.empty());
    return p.command;
}
std::string err(const std::string& q) {
    auto p = parse_replication_command(q);
    REQUIRE(p.command.kind == ReplicationCommandKind::kNone);
    return p.error;
}
}  // namespace

TEST_CASE("replication commands: what stock clients send", "[sk][replication]") {
    CHECK(ok("IDENTIFY_SYSTEM").kind == ReplicationCommandKind::kIdentifySystem);
    CHECK(ok("identify_system;").kind == ReplicationCommandKind::kIdentifySystem);

    auto h = ok("TIMELINE_HISTORY 2");
    CHECK(h.kind == ReplicationCommandKind::kTimelineHistory);
    CHECK(h.timeline == 2);

    // libpqwalreceiver (PG15): START_REPLICATION SLOT "s" X/X TIMELINE n
    auto s = ok("START_REPLICATION SLOT \"standby_1\" 0/3000000 TIMELINE 1");
    CHECK(s.kind == ReplicationCommandKind::kStartReplication);
    CHECK(s.slot_name == "standby_1");
    CHECK(s.start_lsn == 0x3000000);
    CHECK(s.timeline == 1);
    // pg_receivewal: START_REPLICATION [SLOT s] X/X TIMELINE n, PHYSICAL optional
    auto r = ok("START_REPLICATION SLOT Rw PHYSICAL 1/ABCDEF00 TIMELINE 3");
    CHECK(r.slot_name == "rw");  // unquoted identifiers fold to lower case
    CHECK(r.start_lsn == 0x1ABCDEF00ull);
    CHECK(r.timeline == 3);
    auto plain = ok("start_replication 0/0");
    CHECK(plain.kind == ReplicationCommandKind::kStartReplication);
    CHECK(plain.slot_name.empty());
    CHECK(plain.timeline == 0);
    CHECK(ok("START_REPLICATION SLOT \"a\"\"b\" 0/1").slot_name == "a\"b");

    auto rs = ok("READ_REPLICATION_SLOT my_slot");
    CHECK(rs.kind == ReplicationCommandKind::kReadReplicationSlot);
    CHECK(rs.slot_name == "my_slot");

    CHECK(ok("SHOW wal_segment_size").show_name == "wal_segment_size");
    CHECK(ok("show DATA_DIRECTORY_MODE").show_name == "data_directory_mode");
}

TEST_CASE("replication commands: others and malformed ones", "[sk][replication]") {
    CHECK(ok("SELECT 1").kind == ReplicationCommandKind::kNone);
    CHECK(ok("BASE_BACKUP").kind == ReplicationCommandKind::kNone);
    CHECK(ok("").kind == ReplicationCommandKind::kNone);
    CHECK_FALSE(err("IDENTIFY_SYSTEM now").empty());
    CHECK_FALSE(err("TIMELINE_HISTORY").empty());
    CHECK_FALSE(err("TIMELINE_HISTORY 0").empty());
    CHECK_FALSE(err("TIMELINE_HISTORY x").empty());
    CHECK_FALSE(err("TIMELINE_HISTORY 99999999999").empty());
    CHECK_FALSE(err("START_REPLICATION").empty());
    CHECK_FALSE(err("START_REPLICATION SLOT").empty());
    CHECK_FALSE(err("START_REPLICATION 0/XYZ").empty());
    CHECK_FALSE(err("START_REPLICATION 0/1 TIMELINE").empty());
    CHECK_FALSE(err("START_REPLICATION 0/1 TIMELINE 1 extra").empty());
    CHECK_FALSE(err("START_REPLICATION SLOT s LOGICAL 0/1").empty());
    CHECK_FALSE(err("START_REPLICATION SLOT \"unterminated 0/1").empty());
    CHECK_FALSE(err("READ_REPLICATION_SLOT").empty());
    CHECK_FALSE(err("SHOW").empty());
}

TEST_CASE("timeline history prefix of an earlier timeline", "[sk][replication]") {
    const std::string tli2 = "1\t0/3000158\tno recovery target specified\n";
    const std::string tli3 = tli2 + "\n2\t0/5000000\tno recovery target specified\n";
    CHECK(history_prefix_for(tli3, 2) == tli2);
    CHECK(history_prefix_for(tli3, 3) == tli3);
    CHECK_FALSE(history_prefix_for(tli3, 4).has_value());
    CHECK_FALSE(history_prefix_for(tli3, 1).has_value());
    // "1" must not match "11".
    CHECK_FALSE(history_prefix_for("11\t0/1\tx\n", 2).has_value());
}

TEST_CASE("consumer set: feedback minimum, slots, notification", "[sk][replication]") {
    ConsumerSet set;
    const int efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    REQUIRE(efd >= 0);
    ConsumerInfo a;
    a.peer = "a";
    a.slot_name = "s1";
    const auto ida = set.add(a, efd);
    const auto idb = set.add(ConsumerInfo{}, -1);
    CHECK(set.size() == 2);
    CHECK(set.min_hot_standby_feedback() == std::make_pair<std::uint64_t, std::uint64_t>(0, 0));
    CHECK(set.set_hot_standby_feedback(ida, 100, 0));
    CHECK(set.set_hot_standby_feedback(idb, 50, 7));
    CHECK(set.min_hot_standby_feedback() == std::make_pair<std::uint64_t, std::uint64_t>(50, 7));
    CHECK_FALSE(set.set_hot_standby_feedback(ida, 90, 0));  // minimum unchanged
    set.remove(idb);
    CHECK(set.min_hot_standby_feedback() == std::make_pair<std::uint64_t, std::uint64_t>(90, 0));

    CHECK_FALSE(set.slot_flush_lsn("s1").has_value());
    set.set_reply(ida, 0x300, 0x200, 0x100, 1);
    CHECK(set.slot_flush_lsn("s1") == Lsn{0x200});
    set.set_reply(ida, 0x300, 0x100, 0x100, 2);  // a slot's position never goes back
    CHECK(set.slot_flush_lsn("s1") == Lsn{0x200});
    CHECK(set.list().front().flush_lsn == 0x100);

    set.notify_all();
    std::uint64_t v = 0;
    CHECK(::read(efd, &v, sizeof v) == sizeof v);
    CHECK(v == 1);
    set.remove(ida);
    set.notify_all();
    CHECK(::read(efd, &v, sizeof v) < 0);  // no longer registered
    ::close(efd);
}

TEST_CASE("replication commands: slot creation and removal", "[sk][replication][slots]") {
    // streamutil.c (PG15) against a 15 server: new option syntax.
    auto c = ok("CREATE_REPLICATION_SLOT \"archiver\" PHYSICAL");
    CHECK(c.kind == ReplicationCommandKind::kCreateReplicationSlot);
    CHECK(c.slot_name == "archiver");
    CHECK_FALSE(c.reserve_wal);
    CHECK_FALSE(c.temporary);
    CHECK(ok("CREATE_REPLICATION_SLOT \"s\" PHYSICAL (RESERVE_WAL)").reserve_wal);
    CHECK(ok("CREATE_REPLICATION_SLOT s PHYSICAL ( RESERVE_WAL true )").reserve_wal);
    CHECK_FALSE(ok("CREATE_REPLICATION_SLOT s PHYSICAL (RESERVE_WAL 'false')").reserve_wal);
    CHECK(ok("CREATE_REPLICATION_SLOT s PHYSICAL RESERVE_WAL").reserve_wal);  // legacy syntax
    CHECK(ok("CREATE_REPLICATION_SLOT s TEMPORARY PHYSICAL").temporary);
    CHECK_THAT(err("CREATE_REPLICATION_SLOT s LOGICAL pgoutput"), Catch::Contains("logical"));
    CHECK_THAT(err("CREATE_REPLICATION_SLOT s PHYSICAL (TWO_PHASE)"),
               Catch::Contains("unrecognized option"));
    CHECK_THAT(err("CREATE_REPLICATION_SLOT s PHYSICAL (RESERVE_WAL maybe)"),
               Catch::Contains("Boolean"));
    CHECK_FALSE(err("CREATE_REPLICATION_SLOT s").empty());
    CHECK_FALSE(err("CREATE_REPLICATION_SLOT s PHYSICAL (RESERVE_WAL").empty());

    auto d = ok("DROP_REPLICATION_SLOT \"archiver\"");
    CHECK(d.kind == ReplicationCommandKind::kDropReplicationSlot);
    CHECK(d.slot_name == "archiver");
    CHECK_FALSE(d.wait);
    CHECK(ok("DROP_REPLICATION_SLOT s WAIT").wait);
    CHECK_FALSE(err("DROP_REPLICATION_SLOT").empty());
    CHECK_FALSE(err("DROP_REPLICATION_SLOT s NOW").empty());
}

TEST_CASE("consumers: positions of slots that are not persisted are bounded", "[replication]") {
    wp::sk::ConsumerSet set;
    wp::sk::ConsumerInfo held;
    held.slot_name = "held";
    const std::uint64_t held_id = set.add(held, -1);
    set.set_reply(held_id, 0x100, 0x100, 0x100, 1);
    // Many short-lived consumers, each on its own slot name.
    for (int i = 0; i < 200; ++i) {
        wp::sk::ConsumerInfo c;
        c.slot_name = "s" + std::to_string(i);
        const std::uint64_t id = set.add(c, -1);
        set.set_reply(id, 0x200, 0x200, 0x200, 1);
        set.remove(id);
    }
    std::size_t remembered = 0;
    for (int i = 0; i < 200; ++i)
        if (set.slot_flush_lsn("s" + std::to_string(i))) ++remembered;
    CHECK(remembered < wp::sk::ConsumerSet::kMaxRememberedSlots);
    CHECK(set.slot_flush_lsn("s199").has_value());  // the newest is kept
    REQUIRE(set.slot_flush_lsn("held").has_value());  // one in use is never forgotten
    CHECK(*set.slot_flush_lsn("held") == 0x100);
}
