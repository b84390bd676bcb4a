// Safekeeper ingest benchmark client.
//
// Measures, in one run on one disk, the same bytes in the same append size:
//   baseline:   pwrite(APPEND) + fdatasync, sequentially, in --baseline-dir
//               (the disk the safekeeper writes to), twice: into a new file
//               that grows, and over a preallocated (written and synced)
//               file; ratios are against the faster of the two;
//   safekeeper: the WAL pushed through START_WAL_PUSH in AppendRequests of
//               APPEND bytes, fsync on, timed from the first send to the
//               AppendResponse covering the last byte, twice:
//                 window 1   one append in flight: one fdatasync per append,
//                            exactly the baseline's IO pattern plus protocol,
//                            segment creation and bookkeeping;
//                 window N   up to N appends in flight, as the proposer
//                            pipelines; group commit may cover several
//                            appends with one fdatasync.
// Prints each throughput and its ratio to the baseline.
//
// The WAL is real PostgreSQL WAL when --wal-dir names a pg_wal directory
// (segments from the first one up to --end-lsn; system id, segment size and
// timeline are read from the first page's long header), else WAL made by
// WalGenerator (valid PG15 records with CRCs) of --bytes.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "walproposer/byte_order.h"
#include "storage/durable_file.h"
#include "support/push_client.h"
#include "timeline/timeline.h"
#include "storage/wal_format.h"
#include "support/wal_generator.h"

using namespace wp;
using namespace wp::sk;
using Clock = std::chrono::steady_clock;

namespace {

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "safekeeper_ingest: %s\n", what.c_str());
    std::exit(1);
}

struct WalInput {
    std::vector<std::uint8_t> bytes;
    Lsn start = 0;
    std::uint64_t system_id = 0;
    std::uint32_t segment_size = 0;
    std::uint32_t pg_timeline = 1;
    std::string source;
};

// Real WAL: the segment files of `dir` from the first one up to `end_lsn`.
WalInput load_pg_wal(const std::string& dir, Lsn end_lsn) {
    FileSystem& fs = real_file_system();
    auto names = fs.list_directory(dir);
    if (!names) die("cannot list " + dir + ": " + names.status().message());
    std::vector<std::string> segs;
    for (const std::string& n : *names)
        if (n.size() == 24 && n.find_first_not_of("0123456789ABCDEF") == std::string::npos)
            segs.push_back(n);
    std::sort(segs.begin(), segs.end());
    if (segs.empty()) die("no WAL segments in " + dir);
    auto first = read_whole_file(fs, join_path(dir, segs[0]));
    if (!first || first->size() < kLongPageHeaderSize) die("cannot read " + segs[0]);
    const auto* p = reinterpret_cast<const std::uint8_t*>(first->data());
    WalInput in;
    in.pg_timeline = get_le32(p + 4);
    in.start = get_le64(p + 8);          // xlp_pageaddr of the segment's first page
    in.system_id = get_le64(p + 24);     // xlp_sysid
    in.segment_size = get_le32(p + 32);  // xlp_seg_size
    if (!is_valid_segment_size(in.segment_size) || first->size() != in.segment_size)
        die(segs[0] + " does not start with a long page header of a valid segment");
    if (end_lsn <= in.start) die("--end-lsn is not after the first segment's start");
    in.source = "real PostgreSQL WAL from " + dir + " [" + format_lsn(in.start) + ", " +
                format_lsn(end_lsn) + ")";
    for (std::size_t i = 0; in.start + in.bytes.size() < end_lsn; ++i) {
        const Lsn seg_start = in.start + in.bytes.size();
        const std::string want = wal_segment_file_name(
            in.pg_timeline, segment_of(seg_start, in.segment_size), in.segment_size);
        if (i >= segs.size() || segs[i] != want) die("missing WAL segment " + want + " in " + dir);
        auto bytes = i == 0 ? first : read_whole_file(fs, join_path(dir, segs[i]));
        if (!bytes || bytes->size() != in.segment_size) die("cannot read segment " + segs[i]);
        const std::size_t take =
            static_cast<std::size_t>(std::min<Lsn>(in.segment_size, end_lsn - seg_start));
        in.bytes.insert(in.bytes.end(), bytes->data(), bytes->data() + take);
    }
    return in;
}

WalInput generated_wal(std::size_t total) {
    WalInput in;
    in.start = 0x10000000;
    in.system_id = 12345;
    in.segment_size = 16u << 20;
    WalGenerator gen(in.system_id, in.segment_size, 1, in.start);
    in.bytes = gen.append_bytes(total, 8000);
    in.bytes.resize(total);  // may end inside a record, as a real stream may
    in.source = "generated PG15 WAL (WalGenerator), " + std::to_string(total) + " bytes";
    return in;
}

// pwrite(append) + fdatasync of `total` bytes, sequentially. With
// `prefill`, the file is first written with zeros and synced (untimed), so
// the timed writes overwrite allocated blocks and fdatasync has no file
// metadata to commit: the strictest baseline. Without, the file grows with
// every write, as a plain append does.
double baseline_mb_per_s(const std::string& dir, std::size_t total, std::size_t append,
                         bool prefill) {
    const std::string path = dir + "/baseline.bin";
    int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (fd < 0) die("open " + path + ": " + std::strerror(errno));
    std::vector<char> buf(append, prefill ? 0 : 'x');
    if (prefill) {
        for (std::size_t off = 0; off < total; off += append) {
            const std::size_t n = std::min(append, total - off);
            if (::pwrite(fd, buf.data(), n, static_cast<off_t>(off)) != static_cast<ssize_t>(n))
                die(std::string("baseline prefill: ") + std::strerror(errno));
        }
        if (::fsync(fd) != 0) die(std::string("baseline prefill fsync: ") + std::strerror(errno));
        std::fill(buf.begin(), buf.end(), 'x');
    }
    const auto t0 = Clock::now();
    for (std::size_t off = 0; off < total; off += append) {
        const std::size_t n = std::min(append, total - off);
        if (::pwrite(fd, buf.data(), n, static_cast<off_t>(off)) != static_cast<ssize_t>(n) ||
            ::fdatasync(fd) != 0)
            die(std::string("baseline write: ") + std::strerror(errno));
    }
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    ::close(fd);
    ::unlink(path.c_str());
    return static_cast<double>(total) / s / 1e6;
}

struct PushResult {
    double mb_per_s = 0;
    std::uint64_t responses = 0;
};

// Pushes `in` to a fresh timeline (random timeline id) as a newly elected
// proposer; returns the throughput.
PushResult push(const std::string& host, std::uint16_t port, const WalInput& in, std::size_t append,
                std::size_t window) {
    Id128 tenant{}, timeline{};
    tenant.fill(0xBE);
    for (auto& b : timeline) b = static_cast<std::uint8_t>(std::rand() & 0xFF);
    PushClient c;
    auto check = [](const char* what, const Status& s) {
        if (!s) die(std::string(what) + ": " + s.message());
    };
    check("connect", c.connect(host, port,
                               {{"options", "-c tenant_id=" + format_id(tenant) +
                                                " -c timeline_id=" + format_id(timeline)}}));
    check("START_WAL_PUSH", c.start_wal_push());
    ProposerGreeting g;
    g.system_id = in.system_id;
    g.pg_version = 150000;
    g.wal_segment_size = in.segment_size;
    g.tenant_id = tenant;
    g.timeline_id = timeline;
    g.pg_timeline = in.pg_timeline;
    check("greeting", c.send(g));
    auto ag = c.receive();
    if (!ag || !std::holds_alternative<AcceptorGreeting>(*ag)) die("no AcceptorGreeting");
    const Term term = std::get<AcceptorGreeting>(*ag).term + 1;
    check("vote", c.send(VoteRequest{term}));
    auto v = c.receive();
    if (!v || !std::holds_alternative<VoteResponse>(*v) || !std::get<VoteResponse>(*v).vote_granted)
        die("vote not granted");
    ProposerElected e;
    e.term = term;
    e.term_history = {{term, in.start}};
    e.start_streaming_lsn = in.start;
    check("elected", c.send(e));
    auto el = c.receive();
    if (!el || !std::holds_alternative<AppendResponse>(*el)) die("no reply to ProposerElected");

    const auto t0 = Clock::now();
    std::size_t sent = 0, in_flight = 0;
    Lsn acked = 0;
    const Lsn end = in.start + in.bytes.size();
    PushResult r;
    while (acked < end) {
        while (sent < in.bytes.size() && in_flight < window) {
            AppendRequest a;
            a.term = term;
            a.begin_lsn = in.start + sent;
            const std::size_t n = std::min(append, in.bytes.size() - sent);
            a.end_lsn = a.begin_lsn + n;
            a.commit_lsn = acked;
            a.wal.assign(in.bytes.begin() + static_cast<long>(sent),
                         in.bytes.begin() + static_cast<long>(sent + n));
            check("append", c.send(a));
            sent += n;
            ++in_flight;
        }
        auto resp = c.receive();
        if (!resp) die("response: " + resp.status().message());
        if (!std::holds_alternative<AppendResponse>(*resp)) die("unexpected reply to an append");
        acked = std::get<AppendResponse>(*resp).flush_lsn;
        ++r.responses;
        --in_flight;
    }
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    r.mb_per_s = static_cast<double>(in.bytes.size()) / secs / 1e6;
    c.close();
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    std::string host = "127.0.0.1", baseline_dir = "/tmp", wal_dir;
    std::uint16_t port = 5454;
    std::size_t total = 512u << 20, append = 128 * 1024, window = 32;
    Lsn end_lsn = 0;
    auto usage = [&] {
        std::fprintf(
            stderr,
            "usage: %s [--host H] [--port P] [--append-size N] [--window N] [--baseline-dir D]\n"
            "          [--wal-dir PG_WAL --end-lsn X/X | --bytes N]\n",
            argv[0]);
        return 2;
    };
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (i + 1 >= argc) return usage();
        std::string v = argv[++i];
        if (a == "--host")
            host = v;
        else if (a == "--port")
            port = static_cast<std::uint16_t>(std::stoi(v));
        else if (a == "--bytes")
            total = std::stoull(v);
        else if (a == "--append-size")
            append = std::stoull(v);
        else if (a == "--window")
            window = std::stoull(v);
        else if (a == "--baseline-dir")
            baseline_dir = v;
        else if (a == "--wal-dir")
            wal_dir = v;
        else if (a == "--end-lsn") {
            auto l = parse_lsn(v);
            if (!l) return usage();
            end_lsn = *l;
        } else
            return usage();
    }
    if (!wal_dir.empty() && end_lsn == 0) return usage();
    std::srand(static_cast<unsigned>(::getpid()));
    const WalInput in = wal_dir.empty() ? generated_wal(total) : load_pg_wal(wal_dir, end_lsn);
    std::printf("input: %s\n", in.source.c_str());
    std::printf("bytes=%zu append_size=%zu segment_size=%u\n", in.bytes.size(), append,
                in.segment_size);
    const double grow = baseline_mb_per_s(baseline_dir, in.bytes.size(), append, false);
    const double over = baseline_mb_per_s(baseline_dir, in.bytes.size(), append, true);
    const PushResult one = push(host, port, in, append, 1);
    const PushResult many = push(host, port, in, append, window);
    // Ratios against the faster of the two baselines.
    const double base = std::max(grow, over);
    std::printf("%-46s %8.1f MB/s\n", "baseline pwrite+fdatasync, growing file:", grow);
    std::printf("%-46s %8.1f MB/s\n", "baseline pwrite+fdatasync, preallocated file:", over);
    std::printf("%-46s %8.1f MB/s  ratio %.2f\n",
                "safekeeper, window 1 (fsync per append):", one.mb_per_s, one.mb_per_s / base);
    char label[64];
    std::snprintf(label, sizeof label, "safekeeper, window %zu (group commit):", window);
    std::printf("%-46s %8.1f MB/s  ratio %.2f\n", label, many.mb_per_s, many.mb_per_s / base);
    std::printf("ratios are against the faster baseline (%.1f MB/s)\n", base);
    std::printf("target: ratio >= 0.80 (docs/benchmarks.md)\n");
    // For bench/compare.sh: the better of the two safekeeper runs.
    std::printf("result: ingest_ratio %.2f\n", std::max(one.mb_per_s, many.mb_per_s) / base);
    return 0;
}
