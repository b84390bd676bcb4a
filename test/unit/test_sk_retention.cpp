// WAL retention: the removal horizon rules, the slot file, segment removal
// and its crash ordering, and out-of-space handling of the storage.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <random>

#include "retention/horizon.h"
#include "retention/slot_store.h"
#include "storage/wal_storage.h"
#include "support/fault_injection_fs.h"
#include "test_sk_helpers.h"

using namespace wp;
using namespace wp::sk;
using namespace sk_test;

namespace {

constexpr std::uint32_t kSeg = 16u << 20;

RetentionInput base_input() {
    RetentionInput in;
    in.segment_size = kSeg;
    in.timeline_start = 0x1000028;  // inside segment 1
    in.flush_lsn = 0x9000000;
    in.commit_lsn = 0x8800000;
    in.truncate_lsn = 0x8000000;
    in.scan_start = 0x8800000;
    return in;
}

SlotData slot(const std::string& name, Lsn restart, bool invalidated = false) {
    return SlotData{name, restart, invalidated, kInvalidLsn};
}

}  // namespace

TEST_CASE("retention: horizon is truncate_lsn, capped at commit and the scan start",
          "[sk][retention]") {
    RetentionInput in = base_input();
    RetentionDecision d = decide_retention(in);
    CHECK(d.horizon == 0x8000000);
    CHECK(d.remove_below == 0x8000000);  // whole segments below the horizon's segment
    CHECK_FALSE(d.capped);

    in.truncate_lsn = 0x9000000;  // above commit: commit bounds it
    d = decide_retention(in);
    CHECK(d.horizon == 0x8800000);

    in.scan_start = 0x3456789;  // decoding starts here after a restart: keep its segment
    d = decide_retention(in);
    CHECK(d.remove_below == 0x3000000);

    in.scan_start = kInvalidLsn;  // unknown scan start: nothing removed
    CHECK(decide_retention(in).remove_below == kInvalidLsn);

    in = base_input();
    in.truncate_lsn = kInvalidLsn;  // no member position known: nothing
    CHECK(decide_retention(in).remove_below == kInvalidLsn);

    in = base_input();
    in.truncate_lsn = 0x1800000;  // horizon in the first segment: nothing to remove
    CHECK(decide_retention(in).remove_below == kInvalidLsn);
}

TEST_CASE("retention: slots hold WAL back; invalid and unreserved slots do not",
          "[sk][retention]") {
    RetentionInput in = base_input();
    in.slots = {slot("a", 0x5123456), slot("b", 0x7000000), slot("none", kInvalidLsn),
                slot("dead", 0x2000000, true), slot("lost", 0x1000000)};
    RetentionDecision d = decide_retention(in);
    CHECK(d.horizon == 0x5123456);
    CHECK(d.remove_below == 0x5000000);
    CHECK(d.cut_off_slots.empty());
}

TEST_CASE("retention: the cap cuts off slots and lagging members, never above commit",
          "[sk][retention]") {
    RetentionInput in = base_input();
    in.max_retention = 0x2000000;  // 32 MB
    in.truncate_lsn = 0x2000000;   // a lagging member
    in.slots = {slot("slow", 0x3000000), slot("ok", 0x7800000)};
    RetentionDecision d = decide_retention(in);
    CHECK(d.capped);
    CHECK(d.horizon == 0x7000000);  // flush - cap
    CHECK(d.cut_off_slots == std::vector<std::string>{"slow"});
    CHECK(d.member_cut_off);
    CHECK(d.remove_below == 0x7000000);

    // flush - cap above commit: the horizon stops at commit.
    in.max_retention = 0x100000;
    d = decide_retention(in);
    CHECK(d.horizon == in.commit_lsn);
    CHECK(d.cut_off_slots == std::vector<std::string>{"slow", "ok"});

    // Below the cap nothing is cut off.
    in.max_retention = 0x8000000;
    d = decide_retention(in);
    CHECK_FALSE(d.capped);
    CHECK(d.cut_off_slots.empty());
    CHECK_FALSE(d.member_cut_off);
    CHECK(d.horizon == 0x2000000);
}

TEST_CASE("retention: --wal-keep-size keeps the last bytes below the end; the cap wins",
          "[sk][retention]") {
    RetentionInput in = base_input();  // flush 0x9000000, truncate 0x8000000
    in.keep = 0x2000000;               // 32 MB
    RetentionDecision d = decide_retention(in);
    CHECK(d.horizon == 0x7000000);  // flush - keep, below truncate_lsn
    CHECK(d.remove_below == 0x7000000);
    CHECK_FALSE(d.capped);

    in.keep = 0x20000000;  // more than the WAL held: nothing is removed
    d = decide_retention(in);
    CHECK(d.horizon == 0);
    CHECK(d.remove_below == kInvalidLsn);

    // A cap below the floor wins: the horizon rises to flush - cap.
    in.keep = 0x4000000;
    in.max_retention = 0x2000000;
    d = decide_retention(in);
    CHECK(d.capped);
    CHECK(d.horizon == 0x7000000);
}

TEST_CASE("retention: --max-wal-retention sizes", "[sk][retention]") {
    CHECK(*parse_byte_size("off") == 0);
    CHECK(*parse_byte_size("0") == 0);
    CHECK(*parse_byte_size("1024") == 1024);
    CHECK(*parse_byte_size("64kB") == 64u << 10);
    CHECK(*parse_byte_size("512MB") == 512u << 20);
    CHECK(*parse_byte_size("10gb") == 10ull << 30);
    CHECK(*parse_byte_size("2TB") == 2ull << 40);
    CHECK_FALSE(parse_byte_size("").ok());
    CHECK_FALSE(parse_byte_size("MB").ok());
    CHECK_FALSE(parse_byte_size("10 MB").ok());
    CHECK_FALSE(parse_byte_size("-1").ok());
    CHECK_FALSE(parse_byte_size("99999999999TB").ok());
}

TEST_CASE("slots: names are checked as PostgreSQL does", "[sk][retention][slots]") {
    CHECK(validate_slot_name("archiver_1").ok());
    CHECK(validate_slot_name(std::string(63, 'a')).ok());
    CHECK_THAT(validate_slot_name(std::string(64, 'a')).message(), Catch::Contains("too long"));
    CHECK_THAT(validate_slot_name("").message(), Catch::Contains("too short"));
    CHECK_THAT(validate_slot_name("Upper").message(), Catch::Contains("invalid character"));
    CHECK_THAT(validate_slot_name("a-b").message(), Catch::Contains("invalid character"));
}

TEST_CASE("slots: file round trip and every corruption is refused", "[sk][retention][slots]") {
    std::vector<SlotData> slots = {slot("a", 0x1234), SlotData{"b", 0x5000000, true, 0x6000000}};
    const std::string bytes = encode_slot_file(slots);
    auto back = decode_slot_file(bytes);
    REQUIRE(back);
    REQUIRE(back->size() == 2);
    CHECK((*back)[0].name == "a");
    CHECK((*back)[0].restart_lsn == 0x1234);
    CHECK((*back)[1].invalidated);
    CHECK((*back)[1].invalidated_at == 0x6000000);
    CHECK(decode_slot_file(encode_slot_file({})).ok());

    std::string bad = bytes;
    bad[0] ^= 1;
    CHECK_THAT(decode_slot_file(bad).status().message(), Catch::Contains("magic"));
    bad = bytes;
    bad[14] ^= 1;
    CHECK_THAT(decode_slot_file(bad).status().message(), Catch::Contains("CRC"));
    bad = bytes;
    bad[4] = 9;
    CHECK_THAT(decode_slot_file(bad).status().message(), Catch::Contains("version"));
    CHECK_FALSE(decode_slot_file(bytes.substr(0, 10)).ok());
    CHECK_FALSE(
        decode_slot_file(bytes.substr(0, bytes.size() - 5) + bytes.substr(bytes.size() - 4)).ok());
}

TEST_CASE("slots: create, drop, advance and persist across a crash", "[sk][retention][slots]") {
    FaultInjectionFs fs;
    REQUIRE(fs.make_directory("/tl"));
    REQUIRE(fs.sync_directory("/"));
    {
        auto store = SlotStore::load(fs, "/tl");
        REQUIRE(store);
        SlotError why;
        REQUIRE((*store)->create("keep", 0x1000000, why).ok());
        REQUIRE((*store)->create("gone", kInvalidLsn, why).ok());
        CHECK_FALSE((*store)->create("keep", 0, why).ok());
        CHECK(why == SlotError::kExists);
        CHECK_FALSE((*store)->create("Bad", 0, why).ok());
        CHECK(why == SlotError::kBadName);
        REQUIRE((*store)->drop("gone", why).ok());
        CHECK_FALSE((*store)->drop("gone", why).ok());
        CHECK(why == SlotError::kNotFound);
        for (std::size_t i = 1; i < kMaxSlotsPerTimeline; ++i)
            REQUIRE((*store)->create("s" + std::to_string(i), 0, why).ok());
        CHECK_FALSE((*store)->create("one_too_many", 0, why).ok());
        CHECK(why == SlotError::kTooMany);
        (*store)->advance("keep", 0x2000000);
        (*store)->advance("keep", 0x1800000);  // never lowered
        REQUIRE((*store)->persist_if_due(true).ok());
        (*store)->advance("keep", 0x3000000);  // not persisted: lost at the crash
    }
    std::mt19937_64 rng(1);
    fs.crash_and_restart(rng, false);
    auto store = SlotStore::load(fs, "/tl");
    REQUIRE(store);
    auto keep = (*store)->find("keep");
    REQUIRE(keep);
    CHECK(keep->restart_lsn == 0x2000000);
    CHECK_FALSE((*store)->find("gone"));
    CHECK((*store)->list().size() == kMaxSlotsPerTimeline);
}

namespace {

// The sample WAL written, flushed and committed (two 1 MB segments, 9 and A).
std::unique_ptr<WalStorage> committed_sample(FileSystem& fs, const std::vector<std::uint8_t>& wal) {
    auto s = WalStorage::create(fs, "/data/tl", sample_identity());
    REQUIRE(s);
    REQUIRE((*s)->truncate_wal(kSampleStart).ok());
    REQUIRE((*s)->write_wal(kSampleStart, wal.data(), kSampleEnd - kSampleStart).ok());
    REQUIRE((*s)->flush_wal().ok());
    AcceptorDurableState st = (*s)->control().acceptor;
    st.timeline_start_lsn = kSampleStart;
    st.commit_lsn = st.truncate_lsn = kSampleEnd;
    REQUIRE((*s)->persist_state(st).ok());
    REQUIRE((*s)->control().wal_scan_start_lsn >= 0xA00000);
    return std::move(*s);
}

}  // namespace

TEST_CASE("retention: whole segments below the new start are removed durably",
          "[sk][retention][storage]") {
    const auto wal = sample_wal();
    FaultInjectionFs fs;
    REQUIRE(fs.make_directory("/data"));
    REQUIRE(fs.sync_directory("/"));
    {
        auto s = committed_sample(fs, wal);
        CHECK(s->segment_file_names().size() == 2);
        // Refused (nothing changed): not a segment start, above commit.
        CHECK(s->remove_wal_below(0xA00010).status().kind() == StatusKind::kInvalidInput);
        CHECK(s->remove_wal_below(0xB00000).status().kind() == StatusKind::kInvalidInput);
        CHECK(s->failure().ok());
        auto removed = s->remove_wal_below(0xA00000);
        REQUIRE(removed);
        CHECK(*removed == kSampleSegmentSize);
        CHECK(s->segment_file_names() ==
              std::vector<std::string>{"00000001000000000000000A.partial"});
        CHECK(s->timeline_start_lsn() == 0xA00000);
        CHECK(s->control().acceptor.timeline_start_lsn == 0xA00000);
        CHECK(s->counters().wal_removed_bytes.load() == kSampleSegmentSize);
        std::vector<std::uint8_t> buf(100);
        CHECK(s->read_wal(0x9F0000, buf.data(), buf.size()).status().kind() ==
              StatusKind::kNotFound);
        // A later persist of an acceptor state with the old start keeps the new one.
        AcceptorDurableState st = s->control().acceptor;
        st.timeline_start_lsn = kSampleStart;
        REQUIRE(s->persist_state(st).ok());
        CHECK(s->control().acceptor.timeline_start_lsn == 0xA00000);
    }
    std::mt19937_64 rng(7);
    fs.crash_and_restart(rng, true);
    auto s = WalStorage::open(fs, "/data/tl");
    REQUIRE(s);
    CHECK((*s)->flush_lsn() == kSampleEnd);
    CHECK((*s)->timeline_start_lsn() == 0xA00000);
    std::vector<std::uint8_t> back(kSampleEnd - 0xA00000);
    auto n = (*s)->read_wal(0xA00000, back.data(), back.size());
    REQUIRE(n);
    CHECK(*n == back.size());
    CHECK(std::equal(back.begin(), back.end(), wal.begin() + (0xA00000 - kSampleStart)));
}

TEST_CASE("retention: a crash at any step of a removal recovers consistently",
          "[sk][retention][storage][crash]") {
    const auto wal = sample_wal();
    std::uint64_t ops = 0;
    {
        FaultInjectionFs fs;
        REQUIRE(fs.make_directory("/data"));
        auto s = committed_sample(fs, wal);
        const std::uint64_t before = fs.mutating_ops();
        REQUIRE(s->remove_wal_below(0xA00000));
        ops = fs.mutating_ops() - before;
    }
    REQUIRE(ops >= 3);  // control file (tmp, rename, ...), unlink, directory fsync
    for (std::uint64_t n = 1; n <= ops + 1; ++n) {
        INFO("crash at operation " << n << " of " << ops);
        FaultInjectionFs fs;
        REQUIRE(fs.make_directory("/data"));
        REQUIRE(fs.sync_directory("/"));
        {
            auto s = committed_sample(fs, wal);
            fs.set_crash_after(n);
            (void)s->remove_wal_below(0xA00000);
        }
        std::mt19937_64 rng(n);
        fs.crash_and_restart(rng, true);
        auto s = WalStorage::open(fs, "/data/tl");
        REQUIRE(s);
        CHECK((*s)->flush_lsn() == kSampleEnd);
        const Lsn start = (*s)->timeline_start_lsn();
        CHECK((start == kSampleStart || start == 0xA00000));
        // Never a segment below the recorded start (an interrupted removal
        // is finished at start-up), and every byte from the start is there.
        const auto names = (*s)->segment_file_names();
        CHECK(names.back() == "00000001000000000000000A.partial");
        CHECK(names.size() == (start == kSampleStart ? 2u : 1u));
        std::vector<std::uint8_t> back(kSampleEnd - start);
        auto got = (*s)->read_wal(start, back.data(), back.size());
        REQUIRE(got);
        CHECK(*got == back.size());
        CHECK(std::equal(back.begin(), back.end(), wal.begin() + (start - kSampleStart)));
    }
}

// A storage on `fs` holding `wal` from kSampleStart up to 0x9F0000, flushed:
// the next write crosses into segment A, which does not exist yet.
std::unique_ptr<WalStorage> storage_short_of_segment_a(FaultInjectionFs& fs,
                                                      const std::vector<std::uint8_t>& wal) {
    REQUIRE(fs.make_directory("/data"));
    REQUIRE(fs.sync_directory("/"));
    auto s = WalStorage::create(fs, "/data/tl", sample_identity());
    REQUIRE(s);
    REQUIRE((*s)->truncate_wal(kSampleStart).ok());
    AcceptorDurableState st = (*s)->control().acceptor;
    st.timeline_start_lsn = kSampleStart;
    REQUIRE((*s)->persist_state(st).ok());
    REQUIRE((*s)->write_wal(kSampleStart, wal.data(), 0x9F0000 - kSampleStart).ok());
    REQUIRE((*s)->flush_wal().ok());
    return std::move(*s);
}

TEST_CASE("storage: out of space creating a segment changes nothing and is not fatal",
          "[sk][retention][storage][disk_full]") {
    const auto wal = sample_wal();
    FaultInjectionFs fs;
    auto s = storage_short_of_segment_a(fs, wal);
    constexpr Lsn kBoundary = 0xA00000;
    const Lsn acked = s->flush_lsn();
    // The write reserves the rest of segment 9's blocks (operation 1: out of
    // space there changes nothing either, before any byte is written).
    fs.inject_error_after(1, ENOSPC);
    wp::Status r = s->write_wal(0x9F0000, wal.data() + (0x9F0000 - kSampleStart), 0x20000);
    REQUIRE_FALSE(r.ok());
    CHECK(s->out_of_space());
    CHECK(s->failure().ok());
    CHECK(s->write_lsn() == 0x9F0000);
    // Again; now the write crosses into segment A, whose creation (its first
    // mutating operation after the reservation and the pwrite into segment
    // 9) runs out of space.
    fs.inject_error_after(3, ENOSPC);
    wp::Status w = s->write_wal(0x9F0000, wal.data() + (0x9F0000 - kSampleStart), 0x20000);
    REQUIRE_FALSE(w.ok());
    CHECK(is_out_of_space(w));
    CHECK(s->out_of_space());
    CHECK(s->failure().ok());  // not poisoned
    CHECK(s->write_lsn() == kBoundary);
    CHECK(s->flush_lsn() == acked);
    auto names = fs.list_directory("/data/tl");
    REQUIRE(names);
    for (const std::string& name : *names) CHECK(name.find(".tmp") == std::string::npos);
    // Settling makes everything written durable; writing resumes there.
    REQUIRE(s->settle_after_out_of_space().ok());
    CHECK(s->flush_lsn() == kBoundary);
    CHECK_FALSE(s->out_of_space());
    REQUIRE(
        s->write_wal(kBoundary, wal.data() + (kBoundary - kSampleStart), kSampleEnd - kBoundary)
            .ok());
    REQUIRE(s->flush_wal().ok());
    CHECK(s->flush_lsn() == kSampleEnd);
    s.reset();
    std::mt19937_64 rng(3);
    fs.crash_and_restart(rng, true);
    auto again = WalStorage::open(fs, "/data/tl");
    REQUIRE(again);
    CHECK((*again)->flush_lsn() == kSampleEnd);
    std::vector<std::uint8_t> back(kSampleEnd - kSampleStart);
    auto n = (*again)->read_wal(kSampleStart, back.data(), back.size());
    REQUIRE(n);
    CHECK(std::equal(back.begin(), back.begin() + static_cast<std::ptrdiff_t>(*n), wal.begin()));
    CHECK(*n == back.size());
}

TEST_CASE("storage: out of space writing the control file leaves it as it was",
          "[sk][retention][storage][disk_full]") {
    FaultInjectionFs fs;
    REQUIRE(fs.make_directory("/data"));
    REQUIRE(fs.sync_directory("/"));
    auto s = WalStorage::create(fs, "/data/tl", sample_identity());
    REQUIRE(s);
    AcceptorDurableState st = (*s)->control().acceptor;
    st.term = 7;
    fs.inject_error_after(2, ENOSPC);  // the write of safekeeper.control.tmp
    wp::Status p = (*s)->persist_state(st);
    REQUIRE_FALSE(p.ok());
    CHECK(is_out_of_space(p));
    CHECK((*s)->failure().ok());
    CHECK((*s)->control().acceptor.term == 0);
    CHECK_FALSE(fs.exists("/data/tl/safekeeper.control.tmp"));
    REQUIRE((*s)->persist_state(st).ok());  // space is back
    CHECK((*s)->control().acceptor.term == 7);
}

TEST_CASE("storage: out of file descriptors before the control file's rename changes nothing; "
          "after it, the storage is poisoned",
          "[sk][retention][storage][resources]") {
    // Every mutating step of persist_state in turn fails with EMFILE.
    bool saw_before = false, saw_after = false;
    for (std::uint64_t step = 1; step <= 12; ++step) {
        FaultInjectionFs fs;
        REQUIRE(fs.make_directory("/data"));
        REQUIRE(fs.sync_directory("/"));
        auto s = WalStorage::create(fs, "/data/tl", sample_identity());
        REQUIRE(s);
        auto before = read_whole_file(fs, "/data/tl/safekeeper.control");
        REQUIRE(before);
        AcceptorDurableState st = (*s)->control().acceptor;
        st.term = 7;
        fs.inject_error_after(step, EMFILE);
        wp::Status p = (*s)->persist_state(st);
        if (p.ok()) continue;  // the step was past the last one
        auto now = read_whole_file(fs, "/data/tl/safekeeper.control");
        REQUIRE(now);
        INFO("EMFILE at mutating step " << step << ": " << p.message());
        if (*now == *before) {
            // Before the rename: nothing changed, reported as such, not fatal.
            saw_before = true;
            CHECK(is_out_of_resources(p));
            CHECK((*s)->out_of_resources());
            CHECK((*s)->failure().ok());
            CHECK((*s)->control().acceptor.term == 0);
            CHECK_FALSE(fs.exists("/data/tl/safekeeper.control.tmp"));
            REQUIRE((*s)->settle_after_out_of_space().ok());
            CHECK_FALSE((*s)->out_of_resources());
            REQUIRE((*s)->persist_state(st).ok());  // descriptors are back
            CHECK((*s)->control().acceptor.term == 7);
        } else {
            // After the rename the directory changed: never passed off as
            // "nothing changed".
            saw_after = true;
            CHECK_FALSE(is_out_of_resources(p));
            CHECK_FALSE((*s)->out_of_resources());
            CHECK_FALSE((*s)->failure().ok());
        }
    }
    CHECK(saw_before);
    CHECK(saw_after);
}

TEST_CASE("storage: out of file descriptors creating a segment changes nothing and is not fatal",
          "[sk][retention][storage][resources]") {
    const auto wal = sample_wal();
    FaultInjectionFs fs;
    auto s = storage_short_of_segment_a(fs, wal);
    constexpr Lsn kBoundary = 0xA00000;
    // The open of segment A's temporary file fails (after the reservation
    // and the pwrite in segment 9).
    fs.inject_error_after(3, EMFILE);
    wp::Status w = s->write_wal(0x9F0000, wal.data() + (0x9F0000 - kSampleStart), 0x20000);
    REQUIRE_FALSE(w.ok());
    CHECK(is_out_of_resources(w));
    CHECK(s->out_of_resources());
    CHECK(s->failure().ok());
    CHECK(s->write_lsn() == kBoundary);
    REQUIRE(s->settle_after_out_of_space().ok());
    REQUIRE(
        s->write_wal(kBoundary, wal.data() + (kBoundary - kSampleStart), kSampleEnd - kBoundary)
            .ok());
    REQUIRE(s->flush_wal().ok());
    CHECK(s->flush_lsn() == kSampleEnd);
}
