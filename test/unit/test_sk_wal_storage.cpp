#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "support/fault_injection_fs.h"
#include "test_sk_helpers.h"
#include "storage/wal_storage.h"
#include "support/wal_generator.h"

using namespace wp;
using namespace wp::sk;
using namespace sk_test;

namespace {

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

TEST_CASE("storage: a version 1 control file opens (no fence) and is upgraded at the next persist",
          "[sk][storage][control]") {
    FaultInjectionFs fs;
    REQUIRE(fs.make_directory("/data"));
    { auto s = create_at_sample_start(fs, "/data/tl"); }
    auto bytes = read_whole_file(fs, "/data/tl/safekeeper.control");
    REQUIRE(bytes);
    REQUIRE((*bytes)[4] == 3);
    REQUIRE(write_file_atomically(fs, "/data/tl/safekeeper.control", control_file_as_v1(*bytes)));
    {
        auto s = WalStorage::open(fs, "/data/tl");
        REQUIRE(s);
        CHECK((*s)->control().acceptor.min_pg_timeline == 0);
        CHECK((*s)->control().acceptor.timeline_start_lsn == kSampleStart);
        wp::AcceptorDurableState st = (*s)->control().acceptor;
        st.term = 2;
        st.min_pg_timeline = 4;
        REQUIRE((*s)->persist_state(st).ok());
    }
    auto after = read_whole_file(fs, "/data/tl/safekeeper.control");
    REQUIRE(after);
    CHECK((*after)[4] == 3);
    auto s = WalStorage::open(fs, "/data/tl");
    REQUIRE(s);
    CHECK((*s)->control().acceptor.min_pg_timeline == 4);
    CHECK((*s)->control().acceptor.term == 2);
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

TEST_CASE("storage: WAL a killed process left unsynced is made durable before it is trusted",
          "[sk][storage][startup_fsync]") {
    FaultInjectionFs fs;
    REQUIRE(fs.make_directory("/data"));
    REQUIRE(fs.sync_directory("/"));
    const auto wal = sample_wal();
    {
        auto s = create_at_sample_start(fs, "/data/tl");
        write_range(*s, wal, kSampleStart, kSampleEnd);  // pwrite only: in the page cache
    }
    // SIGKILL: the process dies, the page cache (and the unsynced WAL) stays.
    fs.process_crash();
    wp::Lsn reported = 0;
    {
        auto s = WalStorage::open(fs, "/data/tl");
        REQUIRE(s);
        reported = (*s)->flush_lsn();  // what a restarted daemon acknowledges
        CHECK(reported == kSampleEnd);
    }
    // Later the machine loses power: what the restarted daemon reported must stay.
    std::mt19937_64 rng(7);
    fs.crash_and_restart(rng, /*torn=*/false);
    auto s = WalStorage::open(fs, "/data/tl");
    REQUIRE(s);
    CHECK((*s)->flush_lsn() == reported);
    auto back = read_back(**s, kSampleStart, reported);
    REQUIRE(back.size() == reported - kSampleStart);
    CHECK(std::equal(back.begin(), back.end(), wal.begin()));
}

TEST_CASE("storage: a start-up fsync failure refuses to open", "[sk][storage][startup_fsync]") {
    FaultInjectionFs fs;
    REQUIRE(fs.make_directory("/data"));
    const auto wal = sample_wal();
    {
        auto s = create_at_sample_start(fs, "/data/tl");
        write_range(*s, wal, kSampleStart, kSampleEnd);
    }
    fs.process_crash();
    fs.inject_error_after(1, EIO);  // the first fsync of open()
    auto s = WalStorage::open(fs, "/data/tl");
    REQUIRE_FALSE(s);
    CHECK_THAT(s.status().message(), Catch::Contains("start-up fsync"));
}

TEST_CASE("storage: a write_wal that fails midway poisons the storage and leaves no stale bytes",
          "[sk][storage][poison]") {
    const auto wal = sample_wal();
    constexpr wp::Lsn kBefore = 0x9F0000, kBoundary = 0xA00000, kAfter = 0xA10000;
    // One write_wal across the segment boundary: a pwrite in segment 9, the
    // creation of segment A (create, allocate, fsync, rename, directory
    // fsync), a pwrite in it. Count its mutating operations.
    std::uint64_t call_ops = 0;
    {
        FaultInjectionFs fs;
        REQUIRE(fs.make_directory("/data"));
        auto s = create_at_sample_start(fs, "/data/tl");
        write_range(*s, wal, kSampleStart, kBefore);
        REQUIRE(s->flush_wal().ok());
        const std::uint64_t before = fs.mutating_ops();
        REQUIRE(
            s->write_wal(kBefore, wal.data() + (kBefore - kSampleStart), kAfter - kBefore).ok());
        call_ops = fs.mutating_ops() - before;
    }
    REQUIRE(call_ops >= 3);
    for (std::uint64_t n = 1; n <= call_ops; ++n) {
        INFO("ENOSPC at operation " << n << " of " << call_ops);
        FaultInjectionFs fs;
        REQUIRE(fs.make_directory("/data"));
        REQUIRE(fs.sync_directory("/"));
        wp::Lsn acked = 0;
        {
            auto s = create_at_sample_start(fs, "/data/tl");
            write_range(*s, wal, kSampleStart, kBefore);
            REQUIRE(s->flush_wal().ok());
            acked = s->flush_lsn();
            fs.inject_error_after(n, ENOSPC);
            wp::Status w =
                s->write_wal(kBefore, wal.data() + (kBefore - kSampleStart), kAfter - kBefore);
            REQUIRE_FALSE(w.ok());
            CHECK_THAT(w.message(), Catch::Contains("No space left"));
            // The write position covers only complete pwrites: segment 9's
            // part if it was written, nothing of the failed one.
            CHECK(s->write_lsn() == (n == 1 ? kBefore : kBoundary));
            CHECK(s->flush_lsn() == acked);
            if (s->out_of_space()) {
                // Creating segment A ran out of space before anything was
                // written to it: nothing changed (its temporary file is
                // gone), so the storage is not poisoned and may go on
                // (test_sk_retention.cpp); recovery below must still hold.
                CHECK(s->failure().ok());
                CHECK(s->write_lsn() == kBoundary);
                CHECK_FALSE(fs.exists("/data/tl/00000001000000000000000A.partial.tmp"));
            } else {
                // Poisoned: everything later fails with the first error.
                CHECK_FALSE(s->failure().ok());
                const wp::Lsn at = s->write_lsn();
                wp::Status w2 = s->write_wal(at, wal.data() + (at - kSampleStart), 8192);
                CHECK_FALSE(w2.ok());
                CHECK(w2.message() == w.message());
                CHECK_FALSE(s->flush_wal().ok());
                CHECK_FALSE(s->truncate_wal(acked).ok());
                CHECK_FALSE(s->persist_state(s->control().acceptor).ok());
            }
            CHECK(s->flush_lsn() == acked);
        }
        // The process restarts (page cache kept): recovery keeps what was
        // acknowledged and zeroes every byte after the end of WAL.
        fs.process_crash();
        wp::Lsn recovered = 0;
        {
            auto s = WalStorage::open(fs, "/data/tl");
            REQUIRE(s);
            recovered = (*s)->flush_lsn();
            CHECK(recovered >= acked);
            CHECK((*s)->write_lsn() == recovered);
            for (const std::string& name : (*s)->segment_file_names()) {
                auto f = fs.open("/data/tl/" + name, OpenMode::kReadOnly);
                REQUIRE(f);
                const wp::Lsn seg_start =
                    name.compare(0, 24, "00000001000000000000000A") == 0 ? 0xA00000 : 0x900000;
                std::vector<std::uint8_t> bytes(kSampleSegmentSize);
                auto got = (*f)->pread_upto(bytes.data(), bytes.size(), 0);
                REQUIRE(got);
                const std::size_t from =
                    recovered > seg_start ? static_cast<std::size_t>(recovered - seg_start) : 0;
                if (from < *got)
                    CHECK(std::all_of(bytes.begin() + static_cast<std::ptrdiff_t>(from),
                                      bytes.begin() + static_cast<std::ptrdiff_t>(*got),
                                      [](std::uint8_t b) { return b == 0; }));
            }
            // The stream continues from the recovered end.
            write_range(**s, wal, recovered, kSampleEnd);
            REQUIRE((*s)->flush_wal().ok());
            CHECK((*s)->flush_lsn() == kSampleEnd);
        }
        std::mt19937_64 rng(n);
        fs.crash_and_restart(rng, /*torn=*/true);
        auto s = WalStorage::open(fs, "/data/tl");
        REQUIRE(s);
        CHECK((*s)->flush_lsn() == kSampleEnd);
        auto back = read_back(**s, kSampleStart, kSampleEnd);
        CHECK(std::equal(back.begin(), back.end(), wal.begin()));
    }
}

namespace {

// Blocks the real file system holds for `path`, in bytes.
std::uint64_t allocated_bytes(const std::string& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

}  // namespace

TEST_CASE("storage: an idle timeline's disk use and start-up reads follow its WAL; a streaming "
          "one's next segments are reserved whole",
          "[sk][storage][scale]") {
    char tmpl[] = "/tmp/wp_sparse_XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    const std::string root = tmpl;
    FileSystem& fs = real_file_system();
    constexpr std::uint32_t kSeg = 16u << 20;
    constexpr wp::Lsn kStart = 0x3000000 + 0x28;  // just after a segment's long page header
    ControlFileData initial = sample_identity();
    initial.acceptor.identity.wal_segment_size = kSeg;
    WalGenerator gen(kSampleSystemId, kSeg, 1, 0x3000000);
    (void)gen.append_bytes(0x28);  // gets us to kStart
    REQUIRE(gen.position() >= kStart);
    const wp::Lsn start = gen.position();
    auto make = [&](const std::string& dir) {
        auto s = WalStorage::create(fs, dir, initial);
        REQUIRE(s);
        REQUIRE((*s)->truncate_wal(start).ok());
        wp::AcceptorDurableState st = (*s)->control().acceptor;
        st.timeline_start_lsn = start;
        REQUIRE((*s)->persist_state(st).ok());
        return std::move(*s);
    };

    // Idle: 5 kB of WAL.
    const std::string idle = root + "/idle";
    {
        auto s = make(idle);
        const auto wal = gen.append_bytes(5000, 500);
        REQUIRE(s->write_wal(start, wal.data(), wal.size()).ok());
        REQUIRE(s->flush_wal().ok());
        REQUIRE(s->flush_lsn() == gen.position());
        // A sparse first segment gets no zeros ahead (start-up scan stays small).
        CHECK(s->counters().zero_ahead_bytes.load() == 0);
        CHECK(s->open_file_count() > 0);
        CHECK(s->release_files());
        CHECK(s->open_file_count() == 0);
    }
    const std::string partial = idle + "/000000010000000000000003.partial";
    INFO("idle segment holds " << allocated_bytes(partial) << " bytes");
    CHECK(allocated_bytes(partial) <= 128 * 1024);
    {
        auto s = WalStorage::open(fs, idle);
        REQUIRE(s);
        CHECK((*s)->flush_lsn() == gen.position());
        INFO("start-up read " << (*s)->recovery_report().bytes_read << " bytes");
        CHECK((*s)->recovery_report().bytes_read <= 256 * 1024);
        CHECK((*s)->open_file_count() == 0);
        // The file still reads as a whole segment of zeros after the WAL.
        auto f = fs.open(partial, OpenMode::kReadOnly);
        REQUIRE(f);
        auto size = (*f)->size();
        REQUIRE(size);
        CHECK(*size == kSeg);
    }

    // Streaming: 20 MB; the segment after the first is reserved whole before
    // it is written, and writing it allocates nothing more.
    const std::string busy = root + "/busy";
    {
        WalGenerator g2(kSampleSystemId, kSeg, 1, 0x3000000);
        (void)g2.append_bytes(0x28);
        auto s = make(busy);
        const auto wal = g2.append_bytes(20u << 20);
        for (std::size_t done = 0; done < wal.size();) {
            const std::size_t n = std::min<std::size_t>(128 * 1024, wal.size() - done);
            REQUIRE(s->write_wal(start + done, wal.data() + done, n).ok());
            done += n;
        }
        REQUIRE(s->flush_wal().ok());
        CHECK(allocated_bytes(busy + "/000000010000000000000004.partial") >= kSeg);
        CHECK(allocated_bytes(busy + "/000000010000000000000003") >= kSeg - 64 * 1024);
        // Doubling steps: a handful of reservations for the first segment.
        CHECK(s->counters().segment_reservations.load() <= 12);
        // 128 kB writes get no zeros ahead (the short last one at most a zone).
        CHECK(s->counters().zero_ahead_bytes.load() <= 256 * 1024);
    }
    std::filesystem::remove_all(root);
}

namespace {

// Whether every block of [offset, offset + len) of `path` is allocated and
// written (not a hole, not an unwritten reservation), from FIEMAP.
bool blocks_written(const std::string& path, std::uint64_t offset, std::uint64_t len) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    REQUIRE(fd >= 0);
    constexpr unsigned kMaxExtents = 64;
    std::vector<std::uint8_t> buf(sizeof(struct fiemap) + kMaxExtents * sizeof(struct fiemap_extent));
    auto* map = reinterpret_cast<struct fiemap*>(buf.data());
    map->fm_start = offset;
    map->fm_length = len;
    map->fm_flags = FIEMAP_FLAG_SYNC;
    map->fm_extent_count = kMaxExtents;
    const int rc = ::ioctl(fd, FS_IOC_FIEMAP, map);
    const int err = errno;
    ::close(fd);
    INFO("FIEMAP on " << path << ": " << (rc == 0 ? "ok" : std::strerror(err)));
    REQUIRE(rc == 0);
    std::uint64_t covered = offset;
    for (unsigned i = 0; i < map->fm_mapped_extents; ++i) {
        const struct fiemap_extent& e = map->fm_extents[i];
        if (e.fe_logical > covered) return false;  // a hole
        if (e.fe_flags & FIEMAP_EXTENT_UNWRITTEN) return false;
        covered = std::max<std::uint64_t>(covered, e.fe_logical + e.fe_length);
    }
    return covered >= offset + len;
}

}  // namespace

TEST_CASE("storage: small writes in a segment reserved whole land on written blocks (zeros ahead)",
          "[sk][storage][zero_ahead]") {
    char tmpl[] = "/tmp/wp_zero_ahead_XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    const std::string root = tmpl;
    FileSystem& fs = real_file_system();
    constexpr std::uint32_t kSeg = 16u << 20;
    ControlFileData initial = sample_identity();
    initial.acceptor.identity.wal_segment_size = kSeg;
    WalGenerator gen(kSampleSystemId, kSeg, 1, 0x3000000);
    (void)gen.append_bytes(0x28);
    const wp::Lsn start = gen.position();
    const std::string dir = root + "/tl";
    auto created = WalStorage::create(fs, dir, initial);
    REQUIRE(created);
    WalStorage& s = **created;
    REQUIRE(s.truncate_wal(start).ok());
    wp::AcceptorDurableState st = s.control().acceptor;
    st.timeline_start_lsn = start;
    REQUIRE(s.persist_state(st).ok());

    // Bulk into the next segment (reserved whole when it is opened).
    const auto bulk = gen.append_bytes(kSeg + 100 * 1024);
    for (std::size_t done = 0; done < bulk.size();) {
        const std::size_t n = std::min<std::size_t>(128 * 1024, bulk.size() - done);
        REQUIRE(s.write_wal(start + done, bulk.data() + done, n).ok());
        done += n;
    }
    REQUIRE(s.flush_wal().ok());
    const std::uint64_t bulk_zeros = s.counters().zero_ahead_bytes.load();
    CHECK(bulk_zeros <= 256 * 1024);

    // Then commits: small records, one flush each, 400 kB in all.
    const std::string segment = dir + "/000000010000000000000004.partial";
    std::vector<std::uint8_t> all(bulk);
    for (int i = 0; i < 1000; ++i) {
        const wp::Lsn at = gen.position();
        const auto rec = gen.append_bytes(400, 400);
        REQUIRE(s.write_wal(at, rec.data(), rec.size()).ok());
        REQUIRE(s.flush_wal().ok());
        all.insert(all.end(), rec.begin(), rec.end());
        if (i % 97 == 0) {
            // The 128 KiB after the write end are written blocks.
            const std::uint64_t end = gen.position() - 0x4000000;
            INFO("commit " << i << ", write end at offset " << end);
            CHECK(blocks_written(segment, end / 4096 * 4096, 128 * 1024));
        }
    }
    const std::uint64_t zeros = s.counters().zero_ahead_bytes.load() - bulk_zeros;
    INFO("zeros written ahead: " << zeros);
    CHECK(zeros >= 400 * 1000 - 256 * 1024);
    CHECK(zeros <= 400 * 1000 + 2 * 256 * 1024);
    CHECK(s.flush_lsn() == gen.position());
    CHECK(read_back(s, start, gen.position()) == all);
    // Beyond the write end every byte is still zero.
    std::vector<std::uint8_t> tail(128 * 1024);
    auto f = fs.open(segment, OpenMode::kReadOnly);
    REQUIRE(f);
    auto n = (*f)->pread_upto(tail.data(), tail.size(), gen.position() - 0x4000000);
    REQUIRE(n);
    CHECK(*n == tail.size());
    CHECK(std::all_of(tail.begin(), tail.end(), [](std::uint8_t b) { return b == 0; }));
    created->reset();

    auto reopened = WalStorage::open(fs, dir);
    REQUIRE(reopened);
    CHECK((*reopened)->flush_lsn() == gen.position());
    std::filesystem::remove_all(root);
}
