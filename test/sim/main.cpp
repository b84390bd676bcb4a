// wpsim: deterministic simulation of the proposer/acceptor consensus.
//
// The command line of build/wpsim: runs schedules of the simulated world
// (world.h) for a range of seeds, and prints the trace of a violation.
//
// Usage: wpsim [--seeds A..B] [--seed N] [--trace] [--break MODE] [--failover] (see --help)
// Exit: 0 all schedules passed, 1 an invariant violation, 2 usage error.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "world.h"

namespace {

using namespace wpsim;

struct BreakName {
    BreakMode mode;
    const char* name;
    const char* what;
};
const BreakName kBreakModes[] = {
    {BreakMode::kQuorum, "quorum", "majority of N/2"},
    {BreakMode::kOwnTerm, "own-term", "commit old-term WAL by counting replicas (Raft figure 8)"},
    {BreakMode::kLateElected, "late-elected", "acceptor cuts at a stale ProposerElected's start"},
    {BreakMode::kUnsyncedRestart, "unsynced-restart",
     "restart trusts WAL still only in the page cache"},
    {BreakMode::kDelete, "delete", "a deleted and recreated member starts again at term 0"},
    {BreakMode::kContent, "content", "no byte comparison of the donor's WAL with the primary's"},
    {BreakMode::kNoTrim, "no-trim", "term histories are never trimmed (use with --crash-loop)"},
    {BreakMode::kInherit, "inherit",
     "a promoted standby inherits the quorum's WAL unchecked (implies --failover)"},
    {BreakMode::kOneStreamer, "one-streamer",
     "any connection may append in the accepted term (no one streamer per timeline)"},
    {BreakMode::kJoint, "joint",
     "a membership change skips the joint configuration (implies --membership)"},
    {BreakMode::kRecovery, "recovery",
     "peer recovery copies the donor's WAL up to its flush LSN, not only what is committed"},
};
bool parse_u64(const std::string& s, std::uint64_t& out) {
    if (s.empty() || s.size() > 19) return false;
    out = 0;
    for (char ch : s) {
        if (ch < '0' || ch > '9') return false;
        out = out * 10 + static_cast<std::uint64_t>(ch - '0');
    }
    return true;
}

int usage(const char* why) {
    std::fprintf(
        stderr,
        "wpsim: %s\nusage: wpsim [--seeds A..B | --seed N] [--trace] [--keep-going] [--break "
        "MODE] [--failover | --membership]\n"
        "  --failover     model failovers: sync proposer with a fence, promoted standbys,\n"
        "                 old primaries coming back\n"
        "  --membership   model membership changes: 5-6 acceptors, 3 members at first; add,\n"
        "                 remove, replace, and primaries crashing during a change\n"
        "  --seeds A..B   run schedules for seeds A through B (default 1..2000)\n"
        "  --seed N       run one schedule (replays a failing seed)\n"
        "  --trace        print the full trace of each schedule\n"
        "  --keep-going   do not stop at the first violating seed; count them\n"
        "  --break MODE   deliberately break a rule (test of the checker); MODE is one of:\n",
        why);
    for (const BreakName& b : kBreakModes)
        std::fprintf(stderr, "                   %-17s %s\n", b.name, b.what);
    std::fprintf(stderr, "exit: 0 ok, 1 invariant violation, 2 usage error\n");
    return 2;
}

const char* break_name(BreakMode mode) {
    for (const BreakName& b : kBreakModes)
        if (b.mode == mode) return b.name;
    return "";
}

}  // namespace

int main(int argc, char** argv) {
    std::uint64_t first = 1, last = 2000;
    bool trace = false;
    bool keep_going = false;
    std::uint64_t violations = 0;
    BreakMode mode = BreakMode::kNone;
    std::uint64_t crash_loop = 0;
    bool failover = false;
    bool membership = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--trace") {
            trace = true;
        } else if (arg == "--failover") {
            failover = true;
        } else if (arg == "--membership") {
            membership = true;
        } else if (arg == "--keep-going") {
            keep_going = true;
        } else if (arg == "--crash-loop") {
            if (i + 1 >= argc || !parse_u64(argv[++i], crash_loop) || crash_loop == 0)
                return usage("bad --crash-loop, expected a positive number of elections");
        } else if (arg == "--seeds" || arg == "--seed" || arg == "--break") {
            if (i + 1 >= argc) return usage(("missing value for " + arg).c_str());
            const std::string value = argv[++i];
            if (arg == "--break") {
                bool known = false;
                for (const BreakName& b : kBreakModes)
                    if (value == b.name) {
                        mode = b.mode;
                        known = true;
                    }
                if (!known) return usage(("unknown --break mode '" + value + "'").c_str());
            } else if (arg == "--seed") {
                if (!parse_u64(value, first)) return usage("bad --seed");
                last = first;
            } else {
                const auto dots = value.find("..");
                if (dots == std::string::npos || !parse_u64(value.substr(0, dots), first) ||
                    !parse_u64(value.substr(dots + 2), last) || first > last)
                    return usage("bad --seeds, expected A..B with A <= B");
            }
        } else if (arg == "--help" || arg == "-h") {
            usage("help");
            return 0;
        } else {
            return usage(("unknown argument '" + arg + "'").c_str());
        }
    }
    if (mode == BreakMode::kInherit) failover = true;
    if (mode == BreakMode::kJoint) membership = true;
    if (failover && membership) return usage("--failover and --membership do not combine yet");
    const auto t0 = std::chrono::steady_clock::now();
    Stats stats;
    if (crash_loop) {
        World world(first, 0, mode, trace, false);
        std::optional<Violation> v = world.run_crash_loop(stats, crash_loop);
        const double secs =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (trace || v) {
            const auto& lines = world.trace();
            const std::size_t from = (!trace && lines.size() > 200) ? lines.size() - 200 : 0;
            for (std::size_t i = from; i < lines.size(); ++i) std::printf("%s\n", lines[i].c_str());
        }
        if (v) {
            std::printf("\nviolation of %s in the crash loop (seed %llu): %s\n",
                        v->invariant.c_str(), static_cast<unsigned long long>(first),
                        v->detail.c_str());
            return 1;
        }
        std::printf(
            "wpsim: crash loop of %llu elections (%llu steps, %llu commits): histories bounded; no "
            "violation (%.1f s)\n",
            static_cast<unsigned long long>(stats.elections),
            static_cast<unsigned long long>(stats.steps),
            static_cast<unsigned long long>(stats.commits), secs);
        return 0;
    }
    for (std::uint64_t seed = first; seed <= last; ++seed) {
        // Each seed runs kEpisodesPerSeed independent cluster lifetimes.
        std::optional<Violation> v;
        std::unique_ptr<World> world;
        unsigned episode = 0;
        for (; episode < kEpisodesPerSeed && !v; ++episode) {
            world = std::make_unique<World>(seed, episode, mode, trace, failover, membership);
            v = world->run(stats);
            if (trace) {
                std::printf("=== seed %llu episode %u\n", static_cast<unsigned long long>(seed),
                            episode);
                for (const auto& line : world->trace()) std::printf("%s\n", line.c_str());
            }
        }
        ++stats.seeds;
        if (v && keep_going && !trace) {
            ++violations;
            std::printf("violation of %s in seed %llu (episode %u): %s\n", v->invariant.c_str(),
                        static_cast<unsigned long long>(seed), episode - 1, v->detail.c_str());
            continue;
        }
        if (v && !trace) {
            std::printf("=== seed %llu episode %u\n", static_cast<unsigned long long>(seed),
                        episode - 1);
            const auto& lines = world->trace();
            const std::size_t from = (!trace && lines.size() > 400) ? lines.size() - 400 : 0;
            if (from)
                std::printf("... (%zu earlier trace lines; replay with --seed %llu --trace)\n",
                            from, static_cast<unsigned long long>(seed));
            for (std::size_t i = from; i < lines.size(); ++i) std::printf("%s\n", lines[i].c_str());
        }
        if (v) {
            std::printf(
                "\nviolation of %s in seed %llu (episode %u): %s\nreplay: wpsim --seed %llu "
                "--trace%s%s%s%s\n",
                v->invariant.c_str(), static_cast<unsigned long long>(seed), episode - 1,
                v->detail.c_str(), static_cast<unsigned long long>(seed),
                failover && mode != BreakMode::kInherit ? " --failover" : "",
                membership && mode != BreakMode::kJoint ? " --membership" : "",
                mode == BreakMode::kNone ? "" : " --break ", break_name(mode));
            return 1;
        }
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (violations) {
        std::printf("wpsim: %llu of %llu seeds had a violation (%.1f s)\n",
                    static_cast<unsigned long long>(violations),
                    static_cast<unsigned long long>(stats.seeds), secs);
        return 1;
    }
    std::printf(
        "wpsim: seeds %llu..%llu: %llu schedules (%u cluster lifetimes per seed), %llu steps, %llu "
        "messages, %llu elections, %llu commits "
        "(%llu bytes committed), %llu acceptor crashes (%llu power losses), %llu late messages, "
        "%llu recreated members, %llu restored primaries, "
        "%llu superseded proposers, %llu old-term commits; no violation (%.1f s)\n",
        static_cast<unsigned long long>(first), static_cast<unsigned long long>(last),
        static_cast<unsigned long long>(stats.schedules), kEpisodesPerSeed,
        static_cast<unsigned long long>(stats.steps),
        static_cast<unsigned long long>(stats.messages),
        static_cast<unsigned long long>(stats.elections),
        static_cast<unsigned long long>(stats.commits),
        static_cast<unsigned long long>(stats.committed_bytes),
        static_cast<unsigned long long>(stats.crashes),
        static_cast<unsigned long long>(stats.power_losses),
        static_cast<unsigned long long>(stats.late_messages),
        static_cast<unsigned long long>(stats.recreated),
        static_cast<unsigned long long>(stats.clones),
        static_cast<unsigned long long>(stats.superseded),
        static_cast<unsigned long long>(stats.old_term_commits), secs);
    if (failover)
        std::printf(
            "wpsim: failover: %llu failovers, %llu syncs (%llu done, %llu given up), %llu "
            "promotions (%llu lagging), %llu promoted standbys elected, %llu refused as lagging, "
            "%llu fenced primaries, %llu old primaries came back\n",
            static_cast<unsigned long long>(stats.failovers),
            static_cast<unsigned long long>(stats.syncs),
            static_cast<unsigned long long>(stats.syncs_done),
            static_cast<unsigned long long>(stats.syncs_failed),
            static_cast<unsigned long long>(stats.promotions),
            static_cast<unsigned long long>(stats.lagging_promotions),
            static_cast<unsigned long long>(stats.promoted_elected),
            static_cast<unsigned long long>(stats.refused_lagging),
            static_cast<unsigned long long>(stats.fenced),
            static_cast<unsigned long long>(stats.comebacks));
    if (membership)
        std::printf(
            "wpsim: membership: %llu change requests, %llu joint configurations, %llu changes "
            "completed, %llu configurations adopted from safekeepers, %llu primaries crashed "
            "during a change\n",
            static_cast<unsigned long long>(stats.change_requests),
            static_cast<unsigned long long>(stats.joint_configs),
            static_cast<unsigned long long>(stats.changes_done),
            static_cast<unsigned long long>(stats.adopted_configs),
            static_cast<unsigned long long>(stats.change_crashes));
    std::printf("wpsim: peer recovery: %llu recoveries begun, %llu bytes copied\n",
                static_cast<unsigned long long>(stats.recoveries),
                static_cast<unsigned long long>(stats.recovered_bytes));
    return 0;
}
