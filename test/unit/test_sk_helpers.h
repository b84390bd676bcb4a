// Shared helpers of the safekeeper unit tests (test_sk_*.cpp).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "walproposer/lsn.h"

namespace sk_test {

// Directory of test/data (the tests run from the repository root, or
// WP_TEST_DATA points at it).
inline std::string data_dir() {
    if (const char* d = std::getenv("WP_TEST_DATA")) return d;
    return "test/data";
}

inline std::vector<std::uint8_t> read_binary(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
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

}  // namespace sk_test
