// Many-timelines benchmark client (driven by bench/many_timelines.sh).
//
//   create   makes timelines first..first+count-1 of one tenant, each the way
//            a proposer does (START_WAL_PUSH, greeting, vote, election) with
//            --wal-bytes of generated WAL appended and acknowledged, then
//            disconnects; --threads connections at a time. Prints how many
//            were created and how long it took; exits 1 if any failed.
//   latency  streams to timelines first..first+count-1 at once, one thread
//            each, for --seconds: every append is --append-bytes of WAL sent
//            alone (one in flight), as a single-client commit is; prints the
//            appends and their latency (mean, p50, p99, from send to the
//            AppendResponse that covers it).
// Every step is bounded by a receive timeout (--timeout-s): a stalled
// safekeeper fails the run instead of hanging it.
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/push_client.h"
#include "support/wal_generator.h"
#include "walproposer/messages.h"

using namespace wp;
using namespace wp::sk;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::uint64_t kSystemId = 7400000000000000001ULL;
constexpr std::uint32_t kSegmentSize = 16u << 20;
constexpr Lsn kStart = 0x3000000;

struct Options {
    std::string mode, host = "127.0.0.1";
    std::uint16_t port = 5454;
    std::uint32_t first = 0, count = 0, threads = 4;
    std::size_t wal_bytes = 5000, append_bytes = 400;
    double seconds = 10, timeout_s = 30;
    std::uint8_t tenant = 0xAB;
};

Id128 timeline_id(std::uint32_t n) {
    Id128 id{};
    id.fill(0x5A);
    for (int i = 0; i < 4; ++i) id[12 + i] = static_cast<std::uint8_t>(n >> (24 - 8 * i));
    return id;
}

// One proposer connection to timeline `n`, elected in a fresh term, with
// its WAL generator at the acceptor's end of WAL (a new timeline: kStart).
struct Proposer {
    PushClient client;
    Term term = 0;
    WalGenerator gen{kSystemId, kSegmentSize, 1, kStart};
    Lsn acked = 0;

    Status open(const Options& o, std::uint32_t n) {
        Id128 tenant{};
        tenant.fill(o.tenant);
        const Id128 timeline = timeline_id(n);
        WP_RETURN_IF_ERROR(client.connect(o.host, o.port,
                                          {{"options", "-c tenant_id=" + format_id(tenant) +
                                                           " -c timeline_id=" + format_id(timeline)}}));
        timeval limit{static_cast<long>(o.timeout_s), 0};
        ::setsockopt(client.fd(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
        WP_RETURN_IF_ERROR(client.start_wal_push());
        ProposerGreeting g;
        g.system_id = kSystemId;
        g.pg_version = 150004;
        g.wal_segment_size = kSegmentSize;
        g.tenant_id = tenant;
        g.timeline_id = timeline;
        g.pg_timeline = 1;
        WP_RETURN_IF_ERROR(client.send(g));
        auto greeted = client.receive();
        if (!greeted) return greeted.status();
        if (!std::holds_alternative<AcceptorGreeting>(*greeted))
            return Status::error("expected an AcceptorGreeting");
        const AcceptorGreeting& ag = std::get<AcceptorGreeting>(*greeted);
        if (ag.flush_lsn > kStart)
            return Status::error("timeline " + format_id(timeline) +
                                 " already holds WAL: use a fresh data directory");
        term = ag.term + 1;
        WP_RETURN_IF_ERROR(client.send(VoteRequest{term, 0}));
        auto vote = client.receive();
        if (!vote) return vote.status();
        if (!std::holds_alternative<VoteResponse>(*vote) ||
            !std::get<VoteResponse>(*vote).vote_granted)
            return Status::error("vote not granted");
        ProposerElected e;
        e.term = term;
        e.start_streaming_lsn = kStart;
        e.term_history = {{term, kStart}};
        WP_RETURN_IF_ERROR(client.send(e));
        auto elected = client.receive();
        if (!elected) return elected.status();
        if (!std::holds_alternative<AppendResponse>(*elected))
            return Status::error("expected an AppendResponse to ProposerElected");
        return Status();
    }

    // Appends `bytes` of WAL in one AppendRequest and waits for its flush.
    Status append(std::size_t bytes) {
        const std::vector<std::uint8_t> wal = gen.append_bytes(bytes, 200);
        AppendRequest a;
        a.term = term;
        a.begin_lsn = gen.position() - wal.size();
        a.end_lsn = gen.position();
        a.commit_lsn = acked;
        a.wal = wal;
        WP_RETURN_IF_ERROR(client.send(a));
        WP_RETURN_IF_ERROR(client.flush());
        while (acked < a.end_lsn) {
            auto r = client.receive();
            if (!r) return r.status();
            if (!std::holds_alternative<AppendResponse>(*r))
                return Status::error("expected an AppendResponse");
            acked = std::get<AppendResponse>(*r).flush_lsn;
        }
        return Status();
    }
};

int run_create(const Options& o) {
    std::atomic<std::uint32_t> next{0}, failed{0};
    std::mutex print_mutex;
    const auto t0 = Clock::now();
    auto work = [&] {
        for (std::uint32_t i; (i = next.fetch_add(1)) < o.count;) {
            Proposer p;
            Status s = p.open(o, o.first + i);
            if (s) s = p.append(o.wal_bytes);
            p.client.close();
            if (!s) {
                failed.fetch_add(1);
                std::lock_guard<std::mutex> g(print_mutex);
                std::fprintf(stderr, "many_timelines: timeline %u: %s\n", o.first + i,
                             s.message().c_str());
            }
        }
    };
    std::vector<std::thread> pool;
    for (std::uint32_t t = 0; t < o.threads; ++t) pool.emplace_back(work);
    for (auto& t : pool) t.join();
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("created %u timelines (%u failed) in %.1f s (%.0f per second)\n",
                o.count - failed.load(), failed.load(), secs, o.count / secs);
    std::printf("result: created %u\nresult: create_failed %u\n", o.count - failed.load(),
                failed.load());
    return failed.load() == 0 ? 0 : 1;
}

int run_latency(const Options& o) {
    std::vector<std::vector<double>> lat(o.count);
    std::atomic<std::uint32_t> failed{0};
    std::vector<std::thread> pool;
    for (std::uint32_t t = 0; t < o.count; ++t) {
        pool.emplace_back([&, t] {
            Proposer p;
            Status s = p.open(o, o.first + t);
            const auto end = Clock::now() + std::chrono::duration<double>(o.seconds);
            while (s && Clock::now() < end) {
                const auto a0 = Clock::now();
                s = p.append(o.append_bytes);
                lat[t].push_back(std::chrono::duration<double, std::milli>(Clock::now() - a0).count());
            }
            if (!s) {
                failed.fetch_add(1);
                std::fprintf(stderr, "many_timelines: busy timeline %u: %s\n", o.first + t,
                             s.message().c_str());
            }
        });
    }
    for (auto& t : pool) t.join();
    std::vector<double> all;
    for (const auto& v : lat) all.insert(all.end(), v.begin(), v.end());
    if (all.empty() || failed.load() != 0) {
        std::fprintf(stderr, "many_timelines: latency run failed\n");
        return 1;
    }
    std::sort(all.begin(), all.end());
    double sum = 0;
    for (double x : all) sum += x;
    auto pct = [&](double q) { return all[std::min(all.size() - 1, static_cast<std::size_t>(q * all.size()))]; };
    std::printf("%u busy timelines, %.0f s: %zu appends of %zu bytes; latency ms mean %.3f p50 %.3f p99 %.3f\n",
                o.count, o.seconds, all.size(), o.append_bytes, sum / all.size(), pct(0.5), pct(0.99));
    std::printf("result: appends %zu\nresult: latency_mean_ms %.3f\nresult: latency_p50_ms %.3f\n"
                "result: latency_p99_ms %.3f\n",
                all.size(), sum / all.size(), pct(0.5), pct(0.99));
    return 0;
}

int usage(const char* argv0) {
    std::fprintf(stderr,
                 "usage: %s create|latency --count N [--first N] [--host H] [--port P]\n"
                 "          [--threads N] [--wal-bytes N] [--append-bytes N] [--seconds S]\n"
                 "          [--timeout-s S]\n",
                 argv0);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage(argv[0]);
    Options o;
    o.mode = argv[1];
    try {
        for (int i = 2; i < argc; ++i) {
            const std::string a = argv[i];
            if (i + 1 >= argc) return usage(argv[0]);
            const std::string v = argv[++i];
            if (a == "--host") o.host = v;
            else if (a == "--port") o.port = static_cast<std::uint16_t>(std::stoul(v));
            else if (a == "--first") o.first = static_cast<std::uint32_t>(std::stoul(v));
            else if (a == "--count") o.count = static_cast<std::uint32_t>(std::stoul(v));
            else if (a == "--threads") o.threads = static_cast<std::uint32_t>(std::stoul(v));
            else if (a == "--wal-bytes") o.wal_bytes = std::stoull(v);
            else if (a == "--append-bytes") o.append_bytes = std::stoull(v);
            else if (a == "--seconds") o.seconds = std::stod(v);
            else if (a == "--timeout-s") o.timeout_s = std::stod(v);
            else return usage(argv[0]);
        }
    } catch (const std::exception&) {
        return usage(argv[0]);
    }
    if (o.count == 0 || o.threads == 0) return usage(argv[0]);
    if (o.mode == "create") return run_create(o);
    if (o.mode == "latency") return run_latency(o);
    return usage(argv[0]);
}
