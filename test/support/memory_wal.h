// A primary's WAL held in memory, as the WalReader the core's Proposer
// reads from: the byte at LSN base + i is bytes[i]. Used by the core's unit
// tests and the simulator. Reading outside [base, end()) is an error, as
// WAL missing from pg_wal is for the real driver.
//
// One owner, not thread-safe; `bytes` may grow between reads.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "walproposer/proposer.h"

namespace wp::testing {

class MemoryWal : public WalReader {
public:
    explicit MemoryWal(Lsn base = kInvalidLsn) : base(base) {}
    // WAL [base, end) whose byte at LSN l is byte_at(l).
    static MemoryWal generate(Lsn base, Lsn end, const std::function<std::uint8_t(Lsn)>& byte_at);
    // The core tests' usual WAL: the byte at LSN l is (l & 0xFF), for LSNs
    // below `end`.
    static MemoryWal pattern(Lsn end = 1 << 20);

    Lsn base;
    std::vector<std::uint8_t> bytes;

    Lsn end() const { return base + bytes.size(); }
    Status read_wal(Lsn begin, Lsn end, std::vector<std::uint8_t>& out) override;
};

}  // namespace wp::testing
