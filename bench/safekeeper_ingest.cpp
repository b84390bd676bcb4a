// Safekeeper ingest benchmark client.
//
// Measures, in one run on one disk:
//   baseline: pwrite(APPEND_SIZE) + fdatasync, sequentially, into a fresh
//             file in --baseline-dir (the disk the safekeeper writes to);
//   safekeeper: the same number of bytes of valid PG15 WAL pushed through
//             START_WAL_PUSH in AppendRequests of APPEND_SIZE, with up to
//             --window requests in flight (as the proposer pipelines), timed
//             from the first send to the AppendResponse covering the last byte.
// Prints both throughputs and the ratio safekeeper/baseline.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "push_client.h"
#include "timeline.h"
#include "wal_generator.h"

using namespace wp;
using namespace wp::sk;
using Clock = std::chrono::steady_clock;

namespace {

using Status = wp::sk::Status;  // not the core's wp::Status

double baseline_mb_per_s(const std::string& dir, std::size_t total, std::size_t append) {
    const std::string path = dir + "/baseline.bin";
    int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (fd < 0) {
        std::perror("open baseline");
        std::exit(1);
    }
    std::vector<char> buf(append, 'x');
    const auto t0 = Clock::now();
    for (std::size_t off = 0; off < total; off += append) {
        if (::pwrite(fd, buf.data(), append, static_cast<off_t>(off)) != static_cast<ssize_t>(append) ||
            ::fdatasync(fd) != 0) {
            std::perror("baseline write");
            std::exit(1);
        }
    }
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    ::close(fd);
    ::unlink(path.c_str());
    return static_cast<double>(total) / s / 1e6;
}

double safekeeper_mb_per_s(const std::string& host, std::uint16_t port, std::size_t total, std::size_t append,
                           std::size_t window) {
    const std::uint32_t seg = 16u << 20;
    const Lsn start = 0x10000000;
    Id128 tenant{}, timeline{};
    tenant.fill(0xBE);
    timeline.fill(static_cast<std::uint8_t>(std::rand() & 0xFF));
    WalGenerator gen(12345, seg, 1, start);
    std::vector<std::uint8_t> wal = gen.append_bytes(total, 8000);
    wal.resize(total);  // may end inside a record, as a real stream may
    PushClient c;
    auto die = [](const std::string& what, const Status& s) {
        std::fprintf(stderr, "safekeeper_ingest: %s: %s\n", what.c_str(), s.message().c_str());
        std::exit(1);
    };
    Status s = c.connect(host, port, {{"options", "-c tenant_id=" + id_to_hex(tenant) + " -c timeline_id=" + id_to_hex(timeline)}});
    if (!s) die("connect", s);
    if (!(s = c.start_wal_push())) die("START_WAL_PUSH", s);
    ProposerGreeting g;
    g.system_id = 12345;
    g.pg_version = 150000;
    g.wal_segment_size = seg;
    g.tenant_id = tenant;
    g.timeline_id = timeline;
    g.pg_timeline = 1;
    (void)c.send(g);
    auto ag = c.receive();
    if (!ag) die("greeting", ag.status());
    const Term term = std::get<AcceptorGreeting>(*ag).term + 1;
    (void)c.send(VoteRequest{term});
    auto v = c.receive();
    if (!v) die("vote", v.status());
    ProposerElected e;
    e.term = term;
    e.term_history = {{term, start}};
    e.start_streaming_lsn = start;
    (void)c.send(e);
    auto el = c.receive();
    if (!el) die("elected", el.status());

    const auto t0 = Clock::now();
    std::size_t sent = 0, in_flight = 0;
    Lsn acked = 0;
    const Lsn end = start + wal.size();
    while (acked < end) {
        while (sent < wal.size() && in_flight < window) {
            AppendRequest a;
            a.term = term;
            a.begin_lsn = start + sent;
            const std::size_t n = std::min(append, wal.size() - sent);
            a.end_lsn = a.begin_lsn + n;
            a.wal.assign(wal.begin() + static_cast<long>(sent), wal.begin() + static_cast<long>(sent + n));
            if (!(s = c.send(a))) die("append", s);
            sent += n;
            ++in_flight;
        }
        auto r = c.receive();
        if (!r) die("response", r.status());
        acked = std::get<AppendResponse>(*r).flush_lsn;
        --in_flight;
    }
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    return static_cast<double>(total) / secs / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
    std::string host = "127.0.0.1", baseline_dir = "/tmp";
    std::uint16_t port = 5454;
    std::size_t total = 512u << 20, append = 128 * 1024, window = 32;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
        if (a == "--host") host = next();
        else if (a == "--port") port = static_cast<std::uint16_t>(std::stoi(next()));
        else if (a == "--bytes") total = std::stoull(next());
        else if (a == "--append-size") append = std::stoull(next());
        else if (a == "--window") window = std::stoull(next());
        else if (a == "--baseline-dir") baseline_dir = next();
        else {
            std::fprintf(stderr, "usage: %s [--host H] [--port P] [--bytes N] [--append-size N] [--window N] [--baseline-dir D]\n", argv[0]);
            return 2;
        }
    }
    std::srand(static_cast<unsigned>(::getpid()));
    total = (total / append) * append;
    const double base = baseline_mb_per_s(baseline_dir, total, append);
    const double sk = safekeeper_mb_per_s(host, port, total, append, window);
    std::printf("bytes=%zu append_size=%zu window=%zu\n", total, append, window);
    std::printf("baseline pwrite+fdatasync: %.1f MB/s\n", base);
    std::printf("safekeeper ingest:         %.1f MB/s\n", sk);
    std::printf("ratio safekeeper/baseline: %.2f (target >= 0.80)\n", sk / base);
    return 0;
}
