#include <catch2/catch.hpp>

#include <algorithm>

#include "fault_injection_fs.h"
#include "test_sk_helpers.h"
#include "wal_storage.h"

using namespace wp::sk;
using namespace sk_test;

namespace {

ControlFileData sample_identity() {
    ControlFileData d;
    d.acceptor.identity.system_id = kSampleSystemId;
    d.acceptor.identity.wal_segment_size = kSampleSegmentSize;
    d.acceptor.identity.pg_timeline = 1;
    d.acceptor.identity.pg_version = 150000;
    return d;
}

std::unique_ptr<WalStorage> create_at_sample_start(FileSystem& fs, const std::string& dir,
                                                   WalStorageOptions options = {}) {
    auto s = WalStorage::create(fs, dir, sample_identity(), options);
    REQUIRE(s);
    REQUIRE((*s)->truncate_wal(kSampleStart).ok());  // empty store: WAL starts here
    wp::AcceptorDurableState st = (*s)->control().acceptor;
    st.timeline_start_lsn = kSampleStart;
    REQUIRE((*s)->persist_state(st).ok());
    return std::move(*s);
}

void write_range(WalStorage& s, const std::vector<std::uint8_t>& wal, wp::Lsn from, wp::Lsn to,
                 std::size_t chunk = 128 * 1024) {
    for (wp::Lsn pos = from; pos < to;) {
        const std::size_t n = static_cast<std::size_t>(std::min<wp::Lsn>(chunk, to - pos));
        REQUIRE(s.write_wal(pos, wal.data() + (pos - kSampleStart), n).ok());
        pos += n;
    }
}

std::vector<std::uint8_t> read_back(WalStorage& s, wp::Lsn from, wp::Lsn to) {
    std::vector<std::uint8_t> out(to - from);
    auto n = s.read_wal(from, out.data(), out.size());
    REQUIRE(n);
    out.resize(*n);
    return out;
}

}  // namespace

TEST_CASE("storage: write, flush, reopen finds the end of WAL", "[sk][storage]") {
    FaultInjectionFs fs;
    REQUIRE(fs.make_directory("/data"));
    const auto wal = sample_wal();
    {
        auto s = create_at_sample_start(fs, "/data/tl");
        write_range(*s, wal, kSampleStart, kSampleEnd);
        REQUIRE(s->flush_wal().ok());
        CHECK(s->flush_lsn() == kSampleEnd);
        CHECK(s->counters().flush_hint_writes.load() == 0);  // ended at a record end
        CHECK(s->segment_file_names() ==
              std::vector<std::string>{"000000010000000000000009", "00000001000000000000000A.partial"});
    }
    auto s = WalStorage::open(fs, "/data/tl");
    REQUIRE(s);
    CHECK((*s)->flush_lsn() == kSampleEnd);
    CHECK((*s)->recovery_report().records_decoded == 28);
    auto back = read_back(**s, kSampleStart, kSampleEnd);
    CHECK(std::equal(back.begin(), back.end(), wal.begin()));
}

TEST_CASE("storage: a flush inside a record with a short tail acknowledges the record's start",
          "[sk][storage]") {
    FaultInjectionFs fs;
    REQUIRE(fs.make_directory("/data"));
    const auto wal = sample_wal();
    {
        auto s = create_at_sample_start(fs, "/data/tl");  // default: tails under 1 MB wait
        write_range(*s, wal, kSampleStart, 0xA00000);      // 374 kB into the big record
        REQUIRE(s->flush_wal().ok());
        CHECK(s->counters().flush_hint_writes.load() == 0);
        CHECK(s->flush_lsn() == kSampleBigRecord);  // only what a restart can prove
        CHECK(s->write_lsn() == 0xA00000);
        // The record completes with the next appends: all of it is acknowledged.
        write_range(*s, wal, 0xA00000, kSampleEnd);
        REQUIRE(s->flush_wal().ok());
        CHECK(s->flush_lsn() == kSampleEnd);
        CHECK(s->counters().flush_hint_writes.load() == 0);
    }
    auto s = WalStorage::open(fs, "/data/tl");
    REQUIRE(s);
    CHECK((*s)->flush_lsn() == kSampleEnd);
}

TEST_CASE("storage: a flush inside a record survives reopen (flush hint)", "[sk][storage]") {
    FaultInjectionFs fs;
    REQUIRE(fs.make_directory("/data"));
    const auto wal = sample_wal();
    WalStorageOptions small_lag;
    small_lag.hint_lag_bytes = 64 * 1024;  // the sample's big record is 450 kB
    {
        auto s = create_at_sample_start(fs, "/data/tl", small_lag);
        write_range(*s, wal, kSampleStart, 0xA00000);  // page boundary inside the big record
        REQUIRE(s->flush_wal().ok());
        CHECK(s->counters().flush_hint_writes.load() == 1);
        CHECK(s->segment_file_names() == std::vector<std::string>{"000000010000000000000009"});
    }
    {
        auto s = WalStorage::open(fs, "/data/tl", small_lag);
        REQUIRE(s);
        CHECK((*s)->recovery_report().decoded_end == kSampleBigRecord);
        CHECK((*s)->flush_lsn() == 0xA00000);
        // Continue the stream: the ingest decoder is inside the record again.
        write_range(**s, wal, 0xA00000, kSampleEnd);
        REQUIRE((*s)->flush_wal().ok());
        CHECK((*s)->counters().flush_hint_writes.load() == 0);
    }
    auto s = WalStorage::open(fs, "/data/tl");
    REQUIRE(s);
    CHECK((*s)->flush_lsn() == kSampleEnd);
}

TEST_CASE("storage: truncation is durable and zeroes the tail", "[sk][storage]") {
    FaultInjectionFs fs;
    REQUIRE(fs.make_directory("/data"));
    const auto wal = sample_wal();
    {
        auto s = create_at_sample_start(fs, "/data/tl");
        write_range(*s, wal, kSampleStart, kSampleEnd);
        REQUIRE(s->flush_wal().ok());
        REQUIRE(s->truncate_wal(kSampleBigRecord).ok());
        CHECK(s->flush_lsn() == kSampleBigRecord);
        CHECK(s->write_lsn() == kSampleBigRecord);
        CHECK(s->segment_file_names() == std::vector<std::string>{"000000010000000000000009.partial"});
        // A write at the old end is refused; at the new end it is fine.
        CHECK_FALSE(s->write_wal(kSampleEnd, wal.data(), 8).ok());
        CHECK_FALSE(s->truncate_wal(kSampleEnd).ok());  // beyond the end
    }
    std::mt19937_64 rng(1);
    fs.crash_and_restart(rng, /*torn=*/true);  // everything was synced: nothing changes
    auto s = WalStorage::open(fs, "/data/tl");
    REQUIRE(s);
    CHECK((*s)->flush_lsn() == kSampleBigRecord);
    std::vector<std::uint8_t> tail(0xA00000 - kSampleBigRecord);
    auto f = fs.open("/data/tl/000000010000000000000009.partial", OpenMode::kReadOnly);
    REQUIRE(f);
    auto n = (*f)->pread_upto(tail.data(), tail.size(), kSampleBigRecord - 0x900000);
    REQUIRE(n);
    CHECK(std::all_of(tail.begin(), tail.end(), [](std::uint8_t b) { return b == 0; }));
}

TEST_CASE("storage: a corrupt or unknown-version control file refuses to open and is kept", "[sk][storage]") {
    FaultInjectionFs fs;
    REQUIRE(fs.make_directory("/data"));
    { auto s = create_at_sample_start(fs, "/data/tl"); }
    auto bytes = read_whole_file(fs, "/data/tl/safekeeper.control");
    REQUIRE(bytes);
    std::string bad = *bytes;
    bad[4] = 9;  // version
    {
        auto f = fs.open("/data/tl/safekeeper.control", OpenMode::kReadWrite);
        REQUIRE(f);
        REQUIRE((*f)->pwrite_all(bad.data(), bad.size(), 0));
    }
    auto s = WalStorage::open(fs, "/data/tl");
    REQUIRE_FALSE(s);
    CHECK(s.status().kind() == StatusKind::kCorrupt);
    CHECK_THAT(s.status().message(), Catch::Contains("unknown format version 9"));
    auto after = read_whole_file(fs, "/data/tl/safekeeper.control");
    REQUIRE(after);
    CHECK(*after == bad);  // nothing overwritten
}

TEST_CASE("storage: leftovers and stale segments are cleaned on open", "[sk][storage]") {
    FaultInjectionFs fs;
    REQUIRE(fs.make_directory("/data"));
    const auto wal = sample_wal();
    {
        auto s = create_at_sample_start(fs, "/data/tl");
        write_range(*s, wal, kSampleStart, kSampleEnd);
        REQUIRE(s->flush_wal().ok());
    }
    REQUIRE(create_zero_filled_file(fs, "/data/tl/00000001000000000000000B.partial.tmp", 4096));
    REQUIRE(create_zero_filled_file(fs, "/data/tl/00000001000000000000000C", kSampleSegmentSize));
    auto s = WalStorage::open(fs, "/data/tl");
    REQUIRE(s);
    CHECK((*s)->flush_lsn() == kSampleEnd);
    CHECK((*s)->segment_file_names() ==
          std::vector<std::string>{"000000010000000000000009", "00000001000000000000000A.partial"});
    CHECK_FALSE(fs.exists("/data/tl/00000001000000000000000B.partial.tmp"));
}
