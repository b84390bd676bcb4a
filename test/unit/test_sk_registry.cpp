// The timeline registry's start-up and delete rules on FaultInjectionFs:
// what makes a timeline broken at load, and tombstones of deleted
// timelines (docs/storage.md).
#include <catch2/catch.hpp>

#include <random>
#include <thread>

#include "support/fault_injection_fs.h"
#include "test_sk_helpers.h"
#include "timeline/timeline.h"
#include "storage/wal_storage.h"
#include "walproposer/acceptor.h"

using namespace wp;
using namespace wp::sk;
using sk_test::make_id;
using namespace sk_test;

namespace {

const Id128 kTenant = make_id(0x11);
const Id128 kTimeline = make_id(0x22);

std::string tenant_dir() {
    return "/d/" + format_id(kTenant);
}
std::string tl_dir() {
    return tenant_dir() + "/" + format_id(kTimeline);
}
std::string tombstone() {
    return tl_dir() + ".tombstone";
}

const ProposerGreeting kGreeting =
    sk_test::greeting(kSampleSystemId, kSampleSegmentSize, kTenant, kTimeline);

FaultInjectionFs& fresh(FaultInjectionFs& fs) {
    REQUIRE(fs.make_directory("/d"));
    REQUIRE(fs.sync_directory("/"));
    return fs;
}

// A timeline directory with the sample WAL from kSampleStart to kSampleEnd,
// flushed, with commit_lsn = kSampleEnd persisted.
void write_sample_timeline(FileSystem& fs) {
    ControlFileData d;
    d.acceptor.identity.tenant_id = kTenant;
    d.acceptor.identity.timeline_id = kTimeline;
    d.acceptor.identity.system_id = kSampleSystemId;
    d.acceptor.identity.wal_segment_size = kSampleSegmentSize;
    d.acceptor.identity.pg_timeline = 1;
    d.acceptor.identity.pg_version = 150000;
    auto s = WalStorage::create(fs, tl_dir(), d);
    REQUIRE(s);
    REQUIRE((*s)->truncate_wal(kSampleStart).ok());
    const auto wal = sample_wal();
    REQUIRE((*s)->write_wal(kSampleStart, wal.data(), kSampleEnd - kSampleStart).ok());
    REQUIRE((*s)->flush_wal().ok());
    REQUIRE((*s)->flush_lsn() == kSampleEnd);
    AcceptorDurableState st = (*s)->control().acceptor;
    st.term = 3;
    st.term_history = {{3, kSampleStart}};
    st.timeline_start_lsn = kSampleStart;
    st.commit_lsn = kSampleEnd;
    REQUIRE((*s)->persist_state(st).ok());
}

bool granted(Timeline& tl, Term term) {
    std::lock_guard<std::mutex> g(tl.mutex());
    auto r = tl.acceptor()->handle_vote_request(VoteRequest{term});
    REQUIRE(r);
    return r->vote_granted;
}

}  // namespace

TEST_CASE("registry: a deleted timeline comes back at the term it had promised",
          "[sk][registry][tombstone]") {
    FaultInjectionFs fs;
    fresh(fs);
    {
        TimelineRegistry registry(fs, "/d", 1);
        REQUIRE(registry.load_all());
        auto tl = registry.find_or_create(kTenant, kTimeline);
        REQUIRE(tl);
        {
            std::lock_guard<std::mutex> g((*tl)->mutex());
            REQUIRE((*tl)->acceptor()->handle_greeting(kGreeting));
        }
        REQUIRE(granted(**tl, 5));
        REQUIRE(registry.remove(kTenant, kTimeline));
        CHECK_FALSE(fs.exists(tl_dir()));
        CHECK(fs.exists(tombstone()));
        CHECK(registry.find(kTenant, kTimeline) == nullptr);
    }
    // The tombstone is durable: the machine loses power right after DELETE.
    std::mt19937_64 rng(3);
    fs.crash_and_restart(rng, /*torn=*/true);
    TimelineRegistry registry(fs, "/d", 1);
    REQUIRE(registry.load_all());
    CHECK(registry.find(kTenant, kTimeline) == nullptr);
    auto tl = registry.find_or_create(kTenant, kTimeline);  // the next proposer greeting
    INFO(tl.status().message());
    REQUIRE(tl);
    {
        std::lock_guard<std::mutex> g((*tl)->mutex());
        CHECK((*tl)->acceptor()->term() == 5);
        auto hello = (*tl)->acceptor()->handle_greeting(kGreeting);
        REQUIRE(hello);
        CHECK(hello->term == 5);
    }
    CHECK_FALSE(granted(**tl, 5));  // it may have voted in term 5 before
    CHECK(granted(**tl, 6));
    // Deleted again: the tombstone moves up to the new term.
    REQUIRE(registry.remove(kTenant, kTimeline));
    auto again = registry.find_or_create(kTenant, kTimeline);
    REQUIRE(again);
    std::lock_guard<std::mutex> g((*again)->mutex());
    CHECK((*again)->acceptor()->term() == 6);
}

// A failover's fence must survive DELETE and re-creation of a member:
// otherwise a fence on a bare quorum shrinks to a minority and the fenced
// primary could be elected again (found by the simulator's failover model).
TEST_CASE("registry: a deleted timeline comes back with its failover fence",
          "[sk][registry][tombstone]") {
    FaultInjectionFs fs;
    fresh(fs);
    TimelineRegistry registry(fs, "/d", 1);
    REQUIRE(registry.load_all());
    auto tl = registry.find_or_create(kTenant, kTimeline);
    REQUIRE(tl);
    {
        std::lock_guard<std::mutex> g((*tl)->mutex());
        auto v = (*tl)->acceptor()->handle_vote_request(VoteRequest{7, 2});  // a sync's fence
        REQUIRE(v);
        REQUIRE(v->vote_granted);
    }
    REQUIRE(registry.remove(kTenant, kTimeline));
    auto again = registry.find_or_create(kTenant, kTimeline);
    REQUIRE(again);
    std::lock_guard<std::mutex> g((*again)->mutex());
    CHECK((*again)->acceptor()->state().min_pg_timeline == 2);
    auto hello = (*again)->acceptor()->handle_greeting(kGreeting);  // PG timeline 1
    REQUIRE(hello);
    CHECK(hello->min_pg_timeline == 2);
}

namespace {
// An older tombstone format: the first `body` bytes of today's, that version,
// a new CRC.
std::string older_tombstone(const Tombstone& t, std::size_t body, char version) {
    std::string bytes = encode_tombstone(kTimeline, t);
    bytes.resize(body);
    bytes[4] = version;
    const std::uint32_t crc = wp_crc32c(bytes.data(), bytes.size());
    wp::put_le32(bytes, crc);
    return bytes;
}
}  // namespace

TEST_CASE("registry: version 1 (no fence) and 2 (no configuration) tombstones are still read",
          "[sk][registry][tombstone]") {
    // u32 magic, u32 version 1, id, u64 term, u32 CRC: the format before fences.
    auto v1 = decode_tombstone(older_tombstone(Tombstone{9, 4, {}}, 32, 1), kTimeline);
    REQUIRE(v1);
    CHECK(v1->term == 9);
    CHECK(v1->min_pg_timeline == 0);
    // Version 2 adds the fence.
    auto v2 = decode_tombstone(older_tombstone(Tombstone{9, 4, {}}, 36, 2), kTimeline);
    REQUIRE(v2);
    CHECK(v2->term == 9);
    CHECK(v2->min_pg_timeline == 4);
    CHECK(v2->configuration.generation == 0);
}

TEST_CASE("registry: a deleted and recreated timeline keeps its configuration",
          "[sk][registry][tombstone][membership]") {
    FaultInjectionFs fs;
    fresh(fs);
    Configuration config;
    config.generation = 5;
    config.created_term = 3;
    config.members = {{1, {"sk1", 5454}}, {2, {"sk2", 5454}}, {3, {"sk3", 5454}}};
    // The format round-trips it.
    auto decoded = decode_tombstone(encode_tombstone(kTimeline, Tombstone{3, 0, config}), kTimeline);
    REQUIRE(decoded);
    CHECK(decoded->configuration == config);
    TimelineRegistry registry(fs, "/d", 1);
    REQUIRE(registry.load_all());
    {
        auto tl = registry.find_or_create(kTenant, kTimeline);
        REQUIRE(tl);
        std::lock_guard<std::mutex> g((*tl)->mutex());
        AcceptorDurableState state = (*tl)->acceptor()->state();
        state.term = 3;
        state.configuration = config;
        REQUIRE((*tl)->storage()->persist_state(state));
    }
    REQUIRE(registry.remove(kTenant, kTimeline, true));
    auto again = registry.find_or_create(kTenant, kTimeline);
    REQUIRE(again);
    std::lock_guard<std::mutex> g((*again)->mutex());
    CHECK((*again)->acceptor()->state().configuration == config);
    // A proposer of an older configuration is refused its vote.
    VoteRequest old{4};
    old.configuration = ConfigurationKey{4, 9};
    auto vote = (*again)->acceptor()->handle_vote_request(old);
    REQUIRE(vote);
    CHECK_FALSE(vote->vote_granted);
}

TEST_CASE("registry: DELETE is refused while a proposer streams, unless forced",
          "[sk][registry][tombstone]") {
    FaultInjectionFs fs;
    fresh(fs);
    TimelineRegistry registry(fs, "/d", 1);
    REQUIRE(registry.load_all());
    auto tl = registry.find_or_create(kTenant, kTimeline);
    REQUIRE(tl);
    REQUIRE(granted(**tl, 4));
    {
        std::lock_guard<std::mutex> g((*tl)->mutex());
        (*tl)->streaming_locked().claim(1, 4);
        (*tl)->streaming_claimed_locked(nullptr, nullptr, "127.0.0.1:5555");
    }
    wp::Status s = registry.remove(kTenant, kTimeline);
    REQUIRE_FALSE(s);
    CHECK(s.kind() == StatusKind::kInvalidInput);
    CHECK_THAT(s.message(), Catch::Contains("proposer") && Catch::Contains("force=true"));
    CHECK(registry.find(kTenant, kTimeline) != nullptr);  // nothing changed
    CHECK((*tl)->state() == TimelineState::kActive);
    CHECK_FALSE(fs.exists(tombstone()));
    REQUIRE(registry.remove(kTenant, kTimeline, /*force=*/true));
    CHECK((*tl)->state() == TimelineState::kDeleted);
    auto recreated = registry.find_or_create(kTenant, kTimeline);
    REQUIRE(recreated);
    std::lock_guard<std::mutex> g((*recreated)->mutex());
    CHECK((*recreated)->acceptor()->term() == 4);
}

TEST_CASE("registry: an unreadable tombstone refuses creation", "[sk][registry][tombstone]") {
    FaultInjectionFs fs;
    fresh(fs);
    REQUIRE(make_directory_durably(fs, tenant_dir()));
    std::string bytes = encode_tombstone(kTimeline, Tombstone{9, 3});
    REQUIRE(decode_tombstone(bytes, kTimeline));
    CHECK(decode_tombstone(bytes, kTimeline)->term == 9);
    CHECK(decode_tombstone(bytes, kTimeline)->min_pg_timeline == 3);
    SECTION("flipped bit") {
        bytes[20] ^= 1;
    }
    SECTION("short") {
        bytes.resize(10);
    }
    SECTION("another timeline's") {
        bytes = encode_tombstone(make_id(0x33), Tombstone{9, 0});
    }
    REQUIRE(write_file_atomically(fs, tombstone(), bytes));
    TimelineRegistry registry(fs, "/d", 1);
    REQUIRE(registry.load_all());
    auto tl = registry.find_or_create(kTenant, kTimeline);
    REQUIRE_FALSE(tl);
    CHECK(tl.status().kind() == StatusKind::kCorrupt);
    CHECK_THAT(tl.status().message(), Catch::Contains("tombstone"));
    CHECK_FALSE(fs.exists(tl_dir()));
}

TEST_CASE("registry: a commit_lsn above the recovered WAL makes the timeline broken",
          "[sk][registry][commit_above_flush]") {
    FaultInjectionFs fs;
    fresh(fs);
    write_sample_timeline(fs);
    // The control file says everything up to kSampleEnd is committed, and
    // start-up decoding begins at the timeline start.
    auto control = load_control_file(fs, tl_dir());
    REQUIRE(control);
    control->wal_scan_start_lsn = 0;
    REQUIRE(store_control_file(fs, tl_dir(), *control));
    const std::string seg_a = tl_dir() + "/00000001000000000000000A.partial";
    std::string error_part;
    SECTION("the last committed records are gone") {
        // Zeroed (lost) on disk: the WAL now ends at kSampleSecondLast.
        auto f = fs.open(seg_a, OpenMode::kReadWrite);
        REQUIRE(f);
        REQUIRE(write_zeros(**f, kSampleSecondLast - 0xA00000, kSampleEnd - kSampleSecondLast));
        REQUIRE((*f)->sync_data());
        error_part = "above the end of WAL found on disk " + format_lsn(kSampleSecondLast);
    }
    SECTION("the segment holding them is gone") {
        REQUIRE(durable_unlink(fs, seg_a));
        error_part = "WAL segment 00000001000000000000000A is missing";
    }
    auto before_a = read_whole_file(fs, seg_a);
    auto before_9 = read_whole_file(fs, tl_dir() + "/000000010000000000000009");
    REQUIRE(before_9);
    TimelineRegistry registry(fs, "/d", 1);
    REQUIRE(registry.load_all());
    auto tl = registry.find(kTenant, kTimeline);
    REQUIRE(tl);
    CHECK(tl->state() == TimelineState::kBroken);
    const std::string error = tl->snapshot().last_error;
    CHECK_THAT(error, Catch::Contains("commit_lsn " + format_lsn(kSampleEnd)));
    CHECK_THAT(error, Catch::Contains(error_part));
    // Refused before anything was modified.
    auto after_9 = read_whole_file(fs, tl_dir() + "/000000010000000000000009");
    REQUIRE(after_9);
    CHECK(*after_9 == *before_9);
    auto after_a = read_whole_file(fs, seg_a);
    CHECK(after_a.ok() == before_a.ok());
    if (after_a && before_a) CHECK(*after_a == *before_a);
    // find_or_create hands out the broken timeline; it is not recreated.
    auto same = registry.find_or_create(kTenant, kTimeline);
    REQUIRE(same);
    CHECK((*same)->state() == TimelineState::kBroken);
}

TEST_CASE("registry: WAL without a control file is broken, not recreated empty",
          "[sk][registry][no_control]") {
    FaultInjectionFs fs;
    fresh(fs);
    write_sample_timeline(fs);
    REQUIRE(durable_unlink(fs, tl_dir() + "/" + kControlFileName));
    TimelineRegistry registry(fs, "/d", 1);
    REQUIRE(registry.load_all());
    auto tl = registry.find(kTenant, kTimeline);
    REQUIRE(tl);
    CHECK(tl->state() == TimelineState::kBroken);
    CHECK_THAT(tl->snapshot().last_error, Catch::Contains("WAL segments but no control file"));
    auto same = registry.find_or_create(kTenant, kTimeline);
    REQUIRE(same);
    CHECK((*same)->state() == TimelineState::kBroken);
    CHECK_FALSE(fs.exists(tl_dir() + "/" + kControlFileName));
    CHECK(fs.exists(tl_dir() + "/000000010000000000000009"));
}

TEST_CASE("registry: a directory with neither control file nor WAL is an interrupted creation",
          "[sk][registry][no_control]") {
    FaultInjectionFs fs;
    fresh(fs);
    REQUIRE(make_directory_durably(fs, tenant_dir()));
    REQUIRE(make_directory_durably(fs, tl_dir()));
    REQUIRE(create_zero_filled_file(fs, tl_dir() + "/" + kFlushHintFileName, 1024, ZeroFill::kWriteZeros));
    REQUIRE(write_file_atomically(fs, tl_dir() + "/safekeeper.control.tmp", "x"));
    TimelineRegistry registry(fs, "/d", 1);
    REQUIRE(registry.load_all());
    CHECK(registry.find(kTenant, kTimeline) == nullptr);
    auto tl = registry.find_or_create(kTenant, kTimeline);
    REQUIRE(tl);
    CHECK((*tl)->state() == TimelineState::kActive);
}

TEST_CASE("registry: a creation that fails half-way leaves nothing behind, and a retry creates "
          "the timeline",
          "[sk][registry][resources]") {
    bool saw_failure = false;
    for (std::uint64_t step = 1; step <= 30; ++step) {
        FaultInjectionFs fs;
        fresh(fs);
        TimelineRegistry registry(fs, "/d", 1);
        REQUIRE(registry.load_all());
        fs.inject_error_after(step, EMFILE);
        auto first = registry.find_or_create(kTenant, kTimeline);
        fs.inject_error_after(0, 0);
        INFO("EMFILE at mutating step " << step);
        if (!first) {
            saw_failure = true;
            CHECK(registry.find(kTenant, kTimeline) == nullptr);
            CHECK_FALSE(fs.exists(tl_dir()));
        }
        auto tl = registry.find_or_create(kTenant, kTimeline);
        REQUIRE(tl);
        {
            std::lock_guard<std::mutex> g((*tl)->mutex());
            REQUIRE((*tl)->acceptor()->handle_greeting(kGreeting));
        }
        CHECK(granted(**tl, 2));
    }
    CHECK(saw_failure);
}

TEST_CASE("registry: concurrent creations of the same timelines make each one once",
          "[sk][registry][scale]") {
    FaultInjectionFs fs;
    fresh(fs);
    TimelineRegistry registry(fs, "/d", 1);
    REQUIRE(registry.load_all());
    constexpr int kThreads = 6, kTimelines = 40;
    // Every thread asks for every timeline, in a different order.
    std::vector<std::vector<std::shared_ptr<Timeline>>> got(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            got[t].resize(kTimelines);
            for (int k = 0; k < kTimelines; ++k) {
                const int i = (k * 7 + t * 13) % kTimelines;
                auto tl = registry.find_or_create(kTenant, make_id(static_cast<std::uint8_t>(0x40 + i)));
                if (tl) got[t][i] = *tl;
            }
        });
    }
    for (auto& th : threads) th.join();
    for (int i = 0; i < kTimelines; ++i) {
        INFO("timeline " << i);
        REQUIRE(got[0][i]);
        for (int t = 1; t < kThreads; ++t) CHECK(got[t][i] == got[0][i]);  // one object each
    }
    CHECK(registry.list().size() == static_cast<std::size_t>(kTimelines));

    // Loaded back (on several threads): every one, active.
    TimelineRegistry reloaded(fs, "/d", 1);
    REQUIRE(reloaded.load_all());
    CHECK(reloaded.list().size() == static_cast<std::size_t>(kTimelines));
    for (const auto& tl : reloaded.list()) CHECK(tl->state() == TimelineState::kActive);
}

TEST_CASE("registry: a pull is refused while a proposer creates the timeline, and the other way "
          "round",
          "[sk][registry][scale]") {
    FaultInjectionFs fs;
    fresh(fs);
    TimelineRegistry registry(fs, "/d", 1);
    REQUIRE(registry.load_all());
    REQUIRE(registry.begin_pull(kTenant, kTimeline));
    auto refused = registry.find_or_create(kTenant, kTimeline);
    REQUIRE_FALSE(refused);
    CHECK_THAT(refused.status().message(), Catch::Contains("being pulled"));
    registry.end_pull(kTenant, kTimeline);
    REQUIRE(registry.find_or_create(kTenant, kTimeline));
    CHECK_FALSE(registry.begin_pull(kTenant, kTimeline));
}
