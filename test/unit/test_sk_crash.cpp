// Crash tests of the safekeeper storage: the core's Acceptor drives a real
// WalStorage on the fault-injecting file system; the machine "loses power"
// after every possible number of mutating file operations (with unsynced
// writes dropped, or torn at 4 kB granularity), then storage is reopened.
// Checked after every crash point:
//  * the recovered flush LSN is >= every flush LSN acknowledged in an
//    AppendResponse (of the history that is still current), and the WAL
//    bytes up to it are exactly those that were sent;
//  * the recovered term is >= every term a vote was granted for.
#include <catch2/catch.hpp>

#include <random>

#include "support/fault_injection_fs.h"
#include "timeline/timeline.h"
#include "support/wal_generator.h"
#include "storage/wal_storage.h"
#include "test_sk_helpers.h"
#include "walproposer/acceptor.h"

using namespace wp;
using namespace wp::sk;

namespace {

constexpr std::uint32_t kSeg = 1u << 20;
constexpr std::uint64_t kSysId = 4242;
constexpr Lsn kStart = 0x5000000;
const Id128 kTenant = [] {
    Id128 id{};
    id[0] = 1;
    return id;
}();
const Id128 kTimeline = [] {
    Id128 id{};
    id[0] = 2;
    return id;
}();
const ProposerGreeting kGreeting = sk_test::greeting(kSysId, kSeg, kTenant, kTimeline);

struct Outcome {
    Lsn acked_flush = 0;
    Term granted_term = 0;
    std::vector<std::uint8_t> wal;  // expected bytes from kStart
    bool finished = false;
    std::uint64_t hint_writes = 0;
};

// Runs the workload until the file system crashes (an error) or it ends.
Outcome run_workload(FaultInjectionFs& fs, std::uint64_t seed) {
    Outcome out;
    std::mt19937_64 rng(seed);
    ControlFileData initial;
    auto created = WalStorage::create(fs, "/d/tl", initial);
    if (!created) return out;
    std::unique_ptr<WalStorage> storage = std::move(*created);
    Acceptor acc(AcceptorConfig{1}, storage.get(), storage->control().acceptor);
    if (!acc.handle_greeting(kGreeting)) return out;

    Term term = 0;
    std::vector<std::pair<Lsn, Lsn>> boundaries;  // (record end, record start)
    TermHistory history;
    auto elect = [&](Lsn start, Lsn prev) -> std::optional<WalGenerator> {
        ++term;
        auto vote = acc.handle_vote_request(VoteRequest{term});
        if (!vote || !vote->vote_granted) return std::nullopt;
        out.granted_term = term;
        history.push_back({term, start});
        ProposerElected e;
        e.term = term;
        e.start_streaming_lsn = start;
        e.term_history = history;
        // From here on the acceptor may legitimately discard WAL after
        // `start`: the new proposer's history supersedes it.
        out.acked_flush = std::min(out.acked_flush, start);
        auto r = acc.handle_proposer_elected(kGreeting, e);
        if (!r || r->flush_lsn != start) {
            UNSCOPED_INFO("elect failed: " << r.message() << " "
                                           << (r ? format_lsn(r->flush_lsn) : ""));
            return std::nullopt;
        }
        out.acked_flush = std::min(out.acked_flush, start);
        out.wal.resize(start - kStart);
        return WalGenerator(kSysId, kSeg, 1, start, prev);
    };

    std::vector<std::uint8_t> unsent;  // generated, not yet appended
    auto gen = elect(kStart, kInvalidLsn);
    if (!gen) return out;
    for (int round = 0; round < 3; ++round) {
        for (int batch = 0; batch < 6; ++batch) {
            const int appends = 1 + static_cast<int>(rng() % 3);
            for (int a = 0; a < appends; ++a) {
                const int records = 1 + static_cast<int>(rng() % 4);
                for (int r = 0; r < records; ++r) {
                    auto rec = gen->append_record(24 + static_cast<std::uint32_t>(rng() % 30000));
                    unsent.insert(unsent.end(), rec.begin(), rec.end());
                    boundaries.push_back({gen->position(), gen->last_record_start()});
                }
                // Often stop inside the last record: at a page boundary (as
                // PostgreSQL's flush pointer may) or anywhere.
                std::size_t send = unsent.size();
                const Lsn begin = kStart + out.wal.size();
                switch (rng() % 3) {
                    case 0:
                        break;
                    case 1: {
                        const Lsn page_end = ((begin + send) / 8192) * 8192;
                        if (page_end > begin) send = page_end - begin;
                        break;
                    }
                    default:
                        send -= std::min<std::size_t>(send - 1, rng() % 8000);
                        break;
                }
                AppendRequest req;
                req.term = term;
                req.begin_lsn = begin;
                req.end_lsn = begin + send;
                req.wal.assign(unsent.begin(), unsent.begin() + static_cast<long>(send));
                auto o = acc.handle_append_request(req);
                if (!o) {
                    UNSCOPED_INFO("append failed: " << o.message());
                    return out;
                }
                out.wal.insert(out.wal.end(), req.wal.begin(), req.wal.end());
                unsent.erase(unsent.begin(), unsent.begin() + static_cast<long>(send));
            }
            if (auto fs_ = acc.flush(); !fs_.ok()) {
                UNSCOPED_INFO("flush failed: " << fs_.message());
                return out;
            }
            out.acked_flush = acc.make_append_response().flush_lsn;
            if (rng() % 4 == 0 && !acc.persist_horizons().ok()) return out;
        }
        // A new proposer: truncate back to a random earlier record boundary.
        // (never before the current term's start: histories only move forward)
        const Lsn sent_end = kStart + out.wal.size();
        while (!boundaries.empty() && boundaries.back().first > sent_end) boundaries.pop_back();
        std::size_t first = 0;
        while (first < boundaries.size() && boundaries[first].first <= history.back().lsn) ++first;
        REQUIRE(first < boundaries.size());
        const auto b = boundaries[first + rng() % (boundaries.size() - first)];
        while (!boundaries.empty() && boundaries.back().first > b.first) boundaries.pop_back();
        const Lsn cut = std::min<Lsn>(b.first, kStart + out.wal.size());
        const Lsn prev = b.second;
        if (cut != b.first) break;  // not a record boundary we can continue from
        unsent.clear();
        gen = elect(cut, prev);
        if (!gen) return out;
    }
    out.finished = true;
    out.hint_writes = storage->counters().flush_hint_writes.load();
    return out;
}

void check_recovered(FaultInjectionFs& fs, const Outcome& o) {
    auto control = load_control_file(fs, "/d/tl");
    if (!control) {
        // Only possible if the crash hit before the timeline's first control
        // file was durable: then nothing was acknowledged.
        REQUIRE(control.status().kind() == StatusKind::kNotFound);
        CHECK(o.granted_term == 0);
        return;
    }
    CHECK(control->acceptor.term >= o.granted_term);
    auto s = WalStorage::open(fs, "/d/tl");
    REQUIRE(s);
    INFO("recovery: decoded end " << format_lsn((*s)->recovery_report().decoded_end) << " hint "
                                  << format_lsn((*s)->recovery_report().hint_lsn) << " stop "
                                  << (*s)->recovery_report().stop_reason);
    CHECK((*s)->flush_lsn() >= o.acked_flush);
    if (o.acked_flush > kStart) {
        std::vector<std::uint8_t> back(o.acked_flush - kStart);
        auto n = (*s)->read_wal(kStart, back.data(), back.size());
        REQUIRE(n);
        REQUIRE(*n == back.size());
        CHECK(std::equal(back.begin(), back.end(), o.wal.begin()));
    }
    // The recovered storage accepts new WAL at its end.
    Acceptor acc(AcceptorConfig{1}, s->get(), (*s)->control().acceptor);
    CHECK(acc.flush_lsn() == (*s)->flush_lsn());
}

}  // namespace

TEST_CASE("crash at every file operation keeps acknowledged WAL and votes", "[sk][crash]") {
    for (std::uint64_t seed : {1, 2}) {
        std::uint64_t total_ops;
        {
            FaultInjectionFs fs;
            REQUIRE(fs.make_directory("/d"));
            Outcome o = run_workload(fs, seed);
            REQUIRE(o.finished);
            CHECK(o.hint_writes > 0);  // the workload flushes inside records too
            total_ops = fs.mutating_ops();
        }
        for (bool torn : {false, true}) {
            for (std::uint64_t n = 1; n <= total_ops; ++n) {
                FaultInjectionFs fs;
                REQUIRE(fs.make_directory("/d"));
                REQUIRE(fs.sync_directory("/"));
                fs.set_crash_after(n);
                Outcome o = run_workload(fs, seed);
                std::mt19937_64 rng(seed * 1000 + n);
                fs.crash_and_restart(rng, torn);
                INFO("seed " << seed << " crash at op " << n << "/" << total_ops
                             << (torn ? " torn" : ""));
                check_recovered(fs, o);
            }
        }
    }
}

TEST_CASE("crash while a timeline is created never leaves it unusable", "[sk][crash]") {
    Id128 tenant{}, timeline{};
    tenant.fill(0x11);
    timeline.fill(0x22);
    std::uint64_t total_ops;
    {
        FaultInjectionFs fs;
        REQUIRE(fs.make_directory("/d"));
        TimelineRegistry registry(fs, "/d", 1);
        REQUIRE(registry.find_or_create(tenant, timeline));
        total_ops = fs.mutating_ops();
    }
    REQUIRE(total_ops > 3);
    for (bool torn : {false, true}) {
        for (std::uint64_t n = 1; n <= total_ops; ++n) {
            FaultInjectionFs fs;
            REQUIRE(fs.make_directory("/d"));
            REQUIRE(fs.sync_directory("/"));
            fs.set_crash_after(n);
            {
                TimelineRegistry registry(fs, "/d", 1);
                (void)registry.find_or_create(tenant, timeline);
            }
            std::mt19937_64 rng(n);
            fs.crash_and_restart(rng, torn);
            INFO("crash at op " << n << "/" << total_ops << (torn ? " torn" : ""));
            TimelineRegistry registry(fs, "/d", 1);
            REQUIRE(registry.load_all());
            auto tl = registry.find_or_create(tenant, timeline);
            REQUIRE(tl);
            CHECK((*tl)->state() == TimelineState::kActive);
        }
    }
}
