// pull_timeline (safekeeper/pull_timeline/): snapshot on the source, copy,
// verification and atomic install on the destination, each safekeeper on its
// own FaultInjectionFs; the transport is an in-process SnapshotSource that
// calls the same functions as the HTTP routes (docs/safekeeper.md).
#include <catch2/catch.hpp>

#include <functional>
#include <map>
#include <random>

#include "pull_timeline/pull.h"
#include "pull_timeline/snapshot.h"
#include "support/fault_injection_fs.h"
#include "support/wal_generator.h"
#include "test_sk_helpers.h"
#include "timeline/timeline.h"

using namespace wp;
using namespace wp::sk;
using sk_test::make_id;

namespace {

constexpr std::uint32_t kSeg = 1u << 20;
constexpr std::uint64_t kSysId = 4242;
constexpr Lsn kStart = 0x5000000;

const Id128 kTenant = make_id(0x11);
const Id128 kTimeline = make_id(0x22);
const ProposerGreeting kGreeting = sk_test::greeting(kSysId, kSeg, kTenant, kTimeline);

void fresh(FaultInjectionFs& fs) {
    REQUIRE(fs.make_directory("/d"));
    REQUIRE(fs.sync_directory("/"));
}

// A safekeeper holding one timeline that a proposer (driven here through the
// core's acceptor) streams generated WAL to.
struct SourceNode {
    FaultInjectionFs fs;
    std::unique_ptr<TimelineRegistry> registry;
    std::shared_ptr<Timeline> tl;
    Term term = 0;
    TermHistory history;
    std::vector<std::uint8_t> wal;  // every byte appended, from kStart
    std::optional<WalGenerator> gen;
    std::map<Lsn, Lsn> record_ends;  // end of an append -> start of its last record

    explicit SourceNode(WalStorageOptions options = {}) {
        fresh(fs);
        registry = std::make_unique<TimelineRegistry>(fs, "/d", 1, options);
        REQUIRE(registry->load_all());
        auto t = registry->find_or_create(kTenant, kTimeline);
        REQUIRE(t);
        tl = *t;
        std::lock_guard<std::mutex> g(tl->mutex());
        REQUIRE(tl->acceptor()->handle_greeting(kGreeting));
    }
    Lsn flush() {
        std::lock_guard<std::mutex> g(tl->mutex());
        return tl->storage()->flush_lsn();
    }
    // A new proposer elected at `start` (kStart or the end of an earlier
    // append, at or above commit_lsn), truncating what follows.
    void elect(Lsn start) {
        std::lock_guard<std::mutex> g(tl->mutex());
        ++term;
        auto vote = tl->acceptor()->handle_vote_request(VoteRequest{term});
        REQUIRE(vote);
        REQUIRE(vote->vote_granted);
        history.push_back({term, start});
        ProposerElected e;
        e.term = term;
        e.start_streaming_lsn = start;
        e.term_history = history;
        auto r = tl->acceptor()->handle_proposer_elected(kGreeting, e);
        REQUIRE(r);
        REQUIRE(r->flush_lsn == start);
        wal.resize(start - kStart);
        gen.emplace(kSysId, kSeg, 1, start, start == kStart ? kInvalidLsn : record_ends.at(start));
        tl->publish_locked();
    }
    // Appends about `bytes` of records (all of them, or stopping `cut` bytes
    // before the end of the last one), flushes, commits what was flushed before.
    void append(std::size_t bytes, std::size_t cut = 0) {
        std::vector<std::uint8_t> data = gen->append_bytes(bytes, 7000);
        data.resize(data.size() - cut);
        std::lock_guard<std::mutex> g(tl->mutex());
        AppendRequest req;
        req.term = term;
        req.begin_lsn = kStart + wal.size();
        req.end_lsn = req.begin_lsn + data.size();
        req.commit_lsn = tl->storage()->flush_lsn();
        req.wal = data;
        REQUIRE(tl->acceptor()->handle_append_request(req));
        REQUIRE(tl->acceptor()->flush().ok());
        wal.insert(wal.end(), data.begin(), data.end());
        if (cut == 0) record_ends[req.end_lsn] = gen->last_record_start();
        tl->publish_locked();
    }
    // commit_lsn known to the source (the end of the append before the last).
    Lsn commit() {
        std::lock_guard<std::mutex> g(tl->mutex());
        return tl->acceptor()->state().commit_lsn;
    }
};

// The source's functions, as the HTTP routes call them.
class LocalSource final : public SnapshotSource {
  public:
    explicit LocalSource(SourceNode& node) : node_(node) {}
    std::function<void(int)> before_chunk;  // called with the chunk number (1, 2, ...)
    int fail_at_chunk = 0;                  // 0: never
    int chunks = 0;

    std::string describe() const override { return "local"; }
    Result<PullSnapshot> fetch_snapshot(const Id128& tenant, const Id128& timeline) override {
        auto tl = node_.registry->find(tenant, timeline);
        if (!tl) return Status::error(StatusKind::kNotFound, "timeline not found");
        return take_snapshot(*tl, 1);
    }
    Status read_wal(const PullSnapshot& s, Lsn start, Lsn end, std::string& out) override {
        ++chunks;
        if (before_chunk) before_chunk(chunks);
        if (chunks == fail_at_chunk) return Status::error("connection reset by peer");
        return read_snapshot_wal(*node_.tl, s.flush_lsn, s.wal_term, start, end, out).status;
    }

  private:
    SourceNode& node_;
};

// The destination's copy equals the source's state at the snapshot.
void check_copy(Timeline& copy, SourceNode& src, const PullSnapshot& snap) {
    REQUIRE(copy.state() == TimelineState::kActive);
    std::lock_guard<std::mutex> g(copy.mutex());
    WalStorage& st = *copy.storage();
    CHECK(st.flush_lsn() == snap.flush_lsn);
    CHECK(st.timeline_start_lsn() == kStart);
    const std::size_t n = static_cast<std::size_t>(snap.flush_lsn - kStart);
    std::vector<std::uint8_t> got(n);
    auto r = st.read_wal(kStart, got.data(), n);
    REQUIRE(r);
    REQUIRE(*r == n);
    CHECK(std::equal(got.begin(), got.end(), src.wal.begin()));
    auto control = decode_control_file(snap.control_file);
    REQUIRE(control);
    const AcceptorDurableState& a = copy.acceptor()->state();
    CHECK(a.term == control->acceptor.term);
    CHECK(a.term_history == control->acceptor.term_history);
    CHECK(a.commit_lsn == control->acceptor.commit_lsn);
    CHECK(a.identity.system_id == kSysId);
    CHECK(a.identity.wal_segment_size == kSeg);
    CHECK(a.timeline_start_lsn == kStart);
}

bool staging_left(FileSystem& fs) {
    auto entries = fs.list_directory("/d/" + format_id(kTenant));
    if (!entries) return false;
    for (const std::string& e : *entries)
        if (e.rfind(".pull-", 0) == 0) return true;
    return false;
}

}  // namespace

TEST_CASE("pull_timeline: the copy is the source's state at the snapshot, also after a crash",
          "[sk][pull]") {
    SourceNode src;
    src.elect(kStart);
    src.append(3 * kSeg + 12345);
    src.append(20000);  // commits the first append
    LocalSource source(src);
    // Commits go on while the copy runs: the copy ends at the snapshot's flush.
    source.before_chunk = [&](int) { src.append(9000); };

    FaultInjectionFs dst;
    fresh(dst);
    Lsn flush = 0;
    {
        TimelineRegistry registry(dst, "/d", 4);
        registry.set_max_wal_retention(64u << 20);
        registry.set_wal_keep_size(8u << 20);
        REQUIRE(registry.load_all());
        const PullOutcome out = pull_timeline(registry, kTenant, kTimeline, source);
        INFO(out.status.message());
        REQUIRE(out.ok());
        flush = out.snapshot.flush_lsn;
        // The node's retention settings apply to the copy too.
        CHECK(registry.find(kTenant, kTimeline)->max_wal_retention() == (64u << 20));
        CHECK(registry.find(kTenant, kTimeline)->wal_keep_size() == (8u << 20));
        CHECK(flush < src.flush());  // the source went on
        CHECK(out.snapshot.segments.size() == 4);
        CHECK(out.wal_bytes == flush - kStart);
        auto copy = registry.find(kTenant, kTimeline);
        REQUIRE(copy);
        check_copy(*copy, src, out.snapshot);
        CHECK_FALSE(staging_left(dst));
    }
    std::mt19937_64 rng(1);
    dst.crash_and_restart(rng, false);
    TimelineRegistry again(dst, "/d", 4);
    REQUIRE(again.load_all());
    auto copy = again.find(kTenant, kTimeline);
    REQUIRE(copy);
    std::lock_guard<std::mutex> g(copy->mutex());
    CHECK(copy->storage()->flush_lsn() == flush);
}

TEST_CASE("pull_timeline: a flush LSN inside a record is kept through the hint", "[sk][pull]") {
    WalStorageOptions options;
    options.hint_lag_bytes = 0;  // acknowledge every written byte (hint)
    SourceNode src(options);
    src.elect(kStart);
    src.append(kSeg + 5000);
    src.append(30000, /*cut=*/3000);  // ends 3000 bytes before a record's end
    const Lsn flush = src.flush();
    REQUIRE(flush == kStart + src.wal.size());
    LocalSource source(src);
    FaultInjectionFs dst;
    fresh(dst);
    TimelineRegistry registry(dst, "/d", 4);
    REQUIRE(registry.load_all());
    const PullOutcome out = pull_timeline(registry, kTenant, kTimeline, source);
    INFO(out.status.message());
    REQUIRE(out.ok());
    CHECK(out.snapshot.flush_lsn == flush);
    check_copy(*registry.find(kTenant, kTimeline), src, out.snapshot);
}

TEST_CASE("pull_timeline: a truncation below the snapshot's flush makes the copy fail",
          "[sk][pull][stale]") {
    SourceNode src;
    src.elect(kStart);
    src.append(2 * kSeg + 4000);
    src.append(10000);
    auto snap = take_snapshot(*src.tl, 1);
    REQUIRE(snap);
    std::string bytes;
    REQUIRE(read_snapshot_wal(*src.tl, snap->flush_lsn, snap->wal_term, kStart, kStart + 100, bytes)
                .status);
    // A new term truncates the source below the snapshot's flush LSN (at
    // its commit_lsn) and writes different WAL past it.
    REQUIRE(src.commit() < snap->flush_lsn);
    src.elect(src.commit());
    src.append(kSeg);
    REQUIRE(src.flush() > snap->flush_lsn);
    bytes.clear();
    const SnapshotWalRead r =
        read_snapshot_wal(*src.tl, snap->flush_lsn, snap->wal_term, kStart, kStart + 100, bytes);
    CHECK(r.stale);
    CHECK_FALSE(r.status.ok());
    CHECK(bytes.empty());

    // The same in a pull: the destination keeps nothing.
    SourceNode src2;
    src2.elect(kStart);
    src2.append(2 * kSeg + 4000);
    src2.append(10000);
    LocalSource source(src2);
    source.before_chunk = [&](int chunk) {
        if (chunk == 2) {
            src2.elect(src2.commit());
            src2.append(3 * kSeg);
        }
    };
    FaultInjectionFs dst;
    fresh(dst);
    TimelineRegistry registry(dst, "/d", 4);
    REQUIRE(registry.load_all());
    const PullOutcome out = pull_timeline(registry, kTenant, kTimeline, source);
    CHECK(out.failure == PullFailure::kSource);
    CHECK(out.status.message().find("no longer valid") != std::string::npos);
    CHECK(registry.find(kTenant, kTimeline) == nullptr);
    CHECK_FALSE(staging_left(dst));
    // Pulled again, it is the new history.
    source.before_chunk = nullptr;
    const PullOutcome again = pull_timeline(registry, kTenant, kTimeline, source);
    INFO(again.status.message());
    REQUIRE(again.ok());
    check_copy(*registry.find(kTenant, kTimeline), src2, again.snapshot);
}

TEST_CASE("pull_timeline: a source that goes away mid-copy leaves nothing", "[sk][pull]") {
    SourceNode src;
    src.elect(kStart);
    src.append(3 * kSeg);
    LocalSource source(src);
    source.fail_at_chunk = 3;
    FaultInjectionFs dst;
    fresh(dst);
    TimelineRegistry registry(dst, "/d", 4);
    REQUIRE(registry.load_all());
    const PullOutcome out = pull_timeline(registry, kTenant, kTimeline, source);
    CHECK(out.failure == PullFailure::kSource);
    CHECK(out.status.message().find("connection reset") != std::string::npos);
    CHECK(registry.find(kTenant, kTimeline) == nullptr);
    CHECK_FALSE(staging_left(dst));
    CHECK_FALSE(dst.exists("/d/" + format_id(kTenant) + "/" + format_id(kTimeline)));
    // Nothing reserved is left either: the pull can be repeated.
    source.fail_at_chunk = 0;
    REQUIRE(pull_timeline(registry, kTenant, kTimeline, source).ok());
}

TEST_CASE("pull_timeline: a shutdown abandons a running pull and leaves nothing", "[sk][pull]") {
    SourceNode src;
    src.elect(kStart);
    src.append(3 * kSeg);
    LocalSource source(src);
    std::atomic<bool> stopping{false};
    source.before_chunk = [&](int chunk) {
        if (chunk == 2) stopping = true;
    };
    PullOptions options;
    options.cancel = &stopping;
    FaultInjectionFs dst;
    fresh(dst);
    TimelineRegistry registry(dst, "/d", 4);
    REQUIRE(registry.load_all());
    const PullOutcome out = pull_timeline(registry, kTenant, kTimeline, source, options);
    CHECK(out.failure == PullFailure::kLocal);
    CHECK(out.status.message().find("shutting down") != std::string::npos);
    CHECK(source.chunks == 2);
    CHECK(registry.find(kTenant, kTimeline) == nullptr);
    CHECK_FALSE(staging_left(dst));
}

TEST_CASE("pull_timeline: refused when the timeline exists; a tombstone's term is kept",
          "[sk][pull]") {
    SourceNode src;
    src.elect(kStart);
    src.append(kSeg / 2);
    LocalSource source(src);
    FaultInjectionFs dst;
    fresh(dst);
    TimelineRegistry registry(dst, "/d", 4);
    REQUIRE(registry.load_all());
    auto existing = registry.find_or_create(kTenant, kTimeline);
    REQUIRE(existing);
    {
        std::lock_guard<std::mutex> g((*existing)->mutex());
        REQUIRE((*existing)->acceptor()->handle_greeting(kGreeting));
        REQUIRE((*existing)->acceptor()->handle_vote_request(VoteRequest{7})->vote_granted);
    }
    PullOutcome out = pull_timeline(registry, kTenant, kTimeline, source);
    CHECK(out.failure == PullFailure::kConflict);
    CHECK(out.status.message().find("already exists") != std::string::npos);
    CHECK(source.chunks == 0);
    CHECK(registry.find(kTenant, kTimeline) == *existing);

    // Deleted (tombstone at term 7), then pulled from a source at term 1:
    // the copy keeps the promise of term 7.
    REQUIRE(registry.remove(kTenant, kTimeline));
    out = pull_timeline(registry, kTenant, kTimeline, source);
    INFO(out.status.message());
    REQUIRE(out.ok());
    CHECK(out.term == 7);
    auto copy = registry.find(kTenant, kTimeline);
    std::lock_guard<std::mutex> g(copy->mutex());
    CHECK_FALSE(copy->acceptor()->handle_vote_request(VoteRequest{7})->vote_granted);
}

TEST_CASE("pull_timeline: a proposer cannot create the timeline while it is being pulled",
          "[sk][pull]") {
    SourceNode src;
    src.elect(kStart);
    src.append(kSeg);
    LocalSource source(src);
    FaultInjectionFs dst;
    fresh(dst);
    TimelineRegistry registry(dst, "/d", 4);
    REQUIRE(registry.load_all());
    bool refused = false;
    source.before_chunk = [&](int) {
        auto r = registry.find_or_create(kTenant, kTimeline);
        refused = !r && r.status().message().find("being pulled") != std::string::npos;
        CHECK(registry.begin_pull(kTenant, kTimeline).kind() == StatusKind::kInvalidInput);
    };
    REQUIRE(pull_timeline(registry, kTenant, kTimeline, source).ok());
    CHECK(refused);
}

TEST_CASE("pull_timeline: a crash at every file operation leaves nothing or the whole copy",
          "[sk][pull][crash]") {
    SourceNode src;
    src.elect(kStart);
    src.append(2 * kSeg + 777);
    src.append(5000);
    LocalSource source(src);
    auto snap = take_snapshot(*src.tl, 1);
    REQUIRE(snap);
    std::mt19937_64 rng(7);
    int whole = 0, nothing = 0;
    for (std::uint64_t n = 1;; ++n) {
        FaultInjectionFs dst;
        fresh(dst);
        bool ok = false;
        {
            TimelineRegistry registry(dst, "/d", 4);
            REQUIRE(registry.load_all());
            dst.set_crash_after(n);
            ok = pull_timeline(registry, kTenant, kTimeline, source).ok();
        }
        const bool crashed = dst.crashed();
        dst.crash_and_restart(rng, n % 2 == 0);
        TimelineRegistry registry(dst, "/d", 4);
        REQUIRE(registry.load_all());
        CHECK_FALSE(staging_left(dst));
        auto copy = registry.find(kTenant, kTimeline);
        INFO("crash after operation " << n);
        if (copy) {
            ++whole;
            check_copy(*copy, src, *snap);
        } else {
            ++nothing;
            CHECK_FALSE(ok);
            REQUIRE(pull_timeline(registry, kTenant, kTimeline, source).ok());
        }
        if (!crashed) break;
        REQUIRE(n < 500);
    }
    CHECK(whole > 0);
    CHECK(nothing > 10);
}

TEST_CASE("pull_timeline: verify_snapshot refuses a snapshot that does not add up", "[sk][pull]") {
    SourceNode src;
    src.elect(kStart);
    src.append(2 * kSeg + 100);
    src.append(100);
    auto good = take_snapshot(*src.tl, 1);
    REQUIRE(good);
    REQUIRE(verify_snapshot(*good, kTenant, kTimeline));
    auto refused = [&](const std::function<void(PullSnapshot&)>& edit, const char* what) {
        PullSnapshot s = *good;
        edit(s);
        auto r = verify_snapshot(s, kTenant, kTimeline);
        INFO(what);
        CHECK_FALSE(r);
        if (!r) CHECK(r.status().message().find(what) != std::string::npos);
    };
    refused([](PullSnapshot& s) { s.timeline_id = make_id(0x33); }, "of timeline");
    refused([](PullSnapshot& s) { s.control_file[20] ^= 1; }, "CRC");
    refused([](PullSnapshot& s) { s.flush_lsn -= 1; }, "last segment does not end");
    refused([](PullSnapshot& s) { s.wal_term = 9; }, "wal_term");
    refused([](PullSnapshot& s) { s.segments.erase(s.segments.begin() + 1); }, "contiguous");
    refused([](PullSnapshot& s) { s.segments.back().file_name += "x"; }, "not a WAL segment");
    refused([](PullSnapshot& s) { s.segments.back().file_name.resize(24); }, "not .partial");
    refused([](PullSnapshot& s) { s.segments.erase(s.segments.begin()); }, "first segment");
    refused([](PullSnapshot& s) { s.segments.clear(); }, "lists no segment");
    // And the JSON form round-trips.
    auto parsed = snapshot_from_json(snapshot_to_json(*good));
    REQUIRE(parsed);
    CHECK(parsed->control_file == good->control_file);
    CHECK(parsed->segments.size() == good->segments.size());
    CHECK(verify_snapshot(*parsed, kTenant, kTimeline));
}

TEST_CASE("pull_timeline: request body and WAL read parameters", "[sk][pull]") {
    auto body = parse_pull_request_body(
        R"({"source": "https://10.0.0.1:7676", "max_bytes_per_second": 1000, "timeout_seconds": 5})");
    REQUIRE(body.ok());
    CHECK(body->source == "https://10.0.0.1:7676");
    CHECK(body->max_bytes_per_second == 1000);
    CHECK(body->timeout_seconds == 5);
    CHECK(parse_pull_request_body(R"({"source": "x"})")->timeout_seconds == 30);
    for (const char* bad : {"", "[]", "{}", R"({"source": 1})",
                            R"({"source": "x", "max_bytes_per_second": -1})",
                            R"({"source": "x", "timeout_seconds": 0})",
                            R"({"source": "x", "timeout_seconds": 99999999999})"}) {
        INFO(bad);
        auto r = parse_pull_request_body(bad);
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().kind() == StatusKind::kInvalidInput);
    }
    auto params = parse_wal_read_params("0/1000000", "0/1100000", "0/2000000", "7");
    REQUIRE(params.ok());
    CHECK(params->start == 0x1000000);
    CHECK(params->end == 0x1100000);
    CHECK(params->flush == 0x2000000);
    CHECK(params->wal_term == 7);
    CHECK_FALSE(parse_wal_read_params(std::nullopt, "0/1", "0/1", "1").ok());
    CHECK_FALSE(parse_wal_read_params("0/1", "0/1", "0/1", "-1").ok());
    CHECK_FALSE(parse_wal_read_params("0/1", "0/1", "0/1", "1x").ok());
    CHECK_FALSE(parse_wal_read_params("0/1", "0/1", "0/1", "99999999999999999999999").ok());
    CHECK_FALSE(parse_wal_read_params("0/1", "zz", "0/1", "1").ok());
}
