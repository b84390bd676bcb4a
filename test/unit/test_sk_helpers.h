// Shared helpers of the safekeeper unit tests (test_sk_*.cpp).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <algorithm>
#include <string>
#include <vector>

#include "storage/control_file.h"
#include "storage/crc32c.h"
#include "walproposer/byte_order.h"
#include "walproposer/lsn.h"
#include "walproposer/messages.h"
#include "walproposer/timeline_key.h"

namespace sk_test {

// A tenant or timeline id whose 16 bytes are all `b`.
inline wp::Id128 make_id(std::uint8_t b) {
    wp::Id128 id{};
    id.fill(b);
    return id;
}

// A PostgreSQL 15 proposer's greeting for `tenant`/`timeline`.
inline wp::ProposerGreeting greeting(std::uint64_t system_id, std::uint32_t segment_size,
                                     const wp::Id128& tenant, const wp::Id128& timeline,
                                     std::uint32_t pg_timeline = 1) {
    wp::ProposerGreeting g;
    g.system_id = system_id;
    g.pg_version = 150004;
    g.wal_segment_size = segment_size;
    g.tenant_id = tenant;
    g.timeline_id = timeline;
    g.pg_timeline = pg_timeline;
    return g;
}

// A loopback TCP port that was free a moment ago (bound to port 0, released).
inline std::uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

// Starts the safekeeper binary ($WP_SAFEKEEPER_BIN, else build/safekeeper)
// on 127.0.0.1 with data directory `dir`, its output appended to dir + ".log".
// Returns the child's pid; the caller waits for it to accept connections and
// reaps it.
// `binary` overrides the path (e.g. the power-loss test build).
inline pid_t spawn_safekeeper(const std::string& dir, int node_id, int pg_port, int http_port,
                              const std::string& binary = "",
                              const std::vector<std::string>& extra = {}) {
    const char* bin = std::getenv("WP_SAFEKEEPER_BIN");
    const std::string path = !binary.empty() ? binary : bin ? bin : "build/safekeeper";
    std::vector<std::string> args = {path,
                                     "-D",
                                     dir,
                                     "--id",
                                     std::to_string(node_id),
                                     "--listen-pg",
                                     "127.0.0.1:" + std::to_string(pg_port),
                                     "--listen-http",
                                     "127.0.0.1:" + std::to_string(http_port)};
    args.insert(args.end(), extra.begin(), extra.end());
    // Authentication is tested where a test passes a roles file; the rest
    // run with it off (on loopback).
    if (std::find(extra.begin(), extra.end(), "--roles-file") == extra.end()) {
        args.push_back("--auth");
        args.push_back("trust");
    }
    const pid_t pid = ::fork();
    if (pid == 0) {
        const std::string log = dir + ".log";
        FILE* f = std::freopen(log.c_str(), "a", stderr);
        (void)f;
        ::dup2(2, 1);
        std::vector<char*> argv;
        for (std::string& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(path.c_str(), argv.data());
        std::_Exit(127);
    }
    return pid;
}

// Directory of test/data (the tests run from the repository root, or
// WP_TEST_DATA points at it).
inline std::string data_dir() {
    if (const char* d = std::getenv("WP_TEST_DATA")) return d;
    return "test/data";
}

inline std::vector<std::uint8_t> read_binary(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in),
                                     std::istreambuf_iterator<char>());
}

// The PostgreSQL sample (test/data/wal_pg15_1mb/README.md): WAL bytes from
// kSampleStart to kSampleStart + size().
constexpr wp::Lsn kSampleStart = 0x9A4000;
constexpr wp::Lsn kSampleEnd = 0xA12CF0;         // end of WAL
constexpr wp::Lsn kSampleBigRecord = 0x9A4900;   // 450056-byte record crossing 0/A00000
constexpr wp::Lsn kSampleLastRecord = 0xA12CC8;  // COMMIT
constexpr wp::Lsn kSampleSecondLast = 0xA12C88;
constexpr std::uint64_t kSampleSystemId = 7712077702027686120ULL;
constexpr std::uint32_t kSampleSegmentSize = 1u << 20;

inline std::vector<std::uint8_t> sample_wal() {
    auto a = read_binary(data_dir() + "/wal_pg15_1mb/seg09_from_9A4000.bin");
    auto b = read_binary(data_dir() + "/wal_pg15_1mb/seg0A_to_A14000.bin");
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// A control file of format version 1 (no fence) with the content of the
// version 2 file `v2` (whose fence, the last 4 payload bytes, is dropped):
// what an older safekeeper wrote.
// An older control file format from a current one: the payload without its
// last `drop` bytes, written as `version` with a fresh CRC.
inline std::string control_file_as_older(const std::string& current, std::uint32_t version,
                                         std::size_t drop) {
    const std::uint32_t len = wp::get_le32(current.data() + 8);
    std::string old = current.substr(0, 4);
    wp::put_le32(old, version);
    wp::put_le32(old, static_cast<std::uint32_t>(len - drop));
    old += current.substr(12, len - drop);
    wp::put_le32(old, wp_crc32c(old.data(), old.size()));
    return old;
}

// Bytes of a configuration of generation 0 in a version 3 control file.
constexpr std::size_t kNoConfigurationBytes = 4 + 8 + 4 + 1;

// A version 3 file of a state with no configuration, as version 2 / 1.
inline std::string control_file_as_v2(const std::string& v3) {
    return control_file_as_older(v3, 2, kNoConfigurationBytes);
}
inline std::string control_file_as_v1(const std::string& v3) {
    return control_file_as_older(v3, 1, kNoConfigurationBytes + 4);
}

// A control file carrying the sample's identity (system id, 1 MB segments,
// PostgreSQL timeline 1), as the first elected proposer leaves it.
inline wp::sk::ControlFileData sample_identity() {
    wp::sk::ControlFileData d;
    d.acceptor.identity.system_id = kSampleSystemId;
    d.acceptor.identity.wal_segment_size = kSampleSegmentSize;
    d.acceptor.identity.pg_timeline = 1;
    d.acceptor.identity.pg_version = 150000;
    return d;
}

}  // namespace sk_test
