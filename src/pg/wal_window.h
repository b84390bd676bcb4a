// The proposer worker's window of recent WAL, for "read once, send to all"
// (wal_source.h): the newest kBytes of WAL read, in a ring indexed by LSN.
//
// Contract: a read that reaches past the window's end extends it (the
// oldest bytes make room); a read behind that end (a safekeeper catching up
// from further back) leaves the window alone; one that starts beyond the
// end starts the window over. The caller guarantees WAL bytes never change
// (flushed WAL of one timeline). Single-threaded; no PostgreSQL header, so
// the unit tests cover it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "walproposer/lsn.h"

namespace wp::pg {

class WalWindow {
public:
    // Bytes kept: the proposer's in-flight limit per safekeeper, so every
    // safekeeper streaming at the head reads from memory. A power of two.
    static constexpr std::size_t kBytes = 16u << 20;

    // Appends to `out` the bytes of [begin, end) the window holds from
    // `begin` on, as far as they go; returns the LSN it stopped at (`begin`
    // when the window does not hold it).
    Lsn copy(Lsn begin, Lsn end, std::vector<std::uint8_t>& out) const;
    // Offers `size` bytes of WAL just read at `begin` (see the contract).
    // The ring is allocated at the first call.
    void remember(Lsn begin, const std::uint8_t* bytes, std::size_t size);

    Lsn begin() const { return begin_; }
    Lsn end() const { return end_; }

private:
    // WAL [begin_, end_); the byte at LSN x is at ring_[x % kBytes].
    Lsn begin_ = 0;
    Lsn end_ = 0;
    std::vector<std::uint8_t> ring_;
};

}  // namespace wp::pg
