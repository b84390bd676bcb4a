// The worker's window of recent WAL (src/pg/wal_window.h): every byte it
// serves is the WAL at that LSN, whatever the order of the reads.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <vector>

#include "../../src/pg/wal_window.h"

namespace {

using wp::Lsn;
using wp::pg::WalWindow;

constexpr Lsn kStart = 0x3000000;

// The WAL byte at `lsn` (a pattern that differs at every offset of the ring).
std::uint8_t wal_byte(Lsn lsn) { return static_cast<std::uint8_t>((lsn * 2654435761u) >> 13); }

std::vector<std::uint8_t> wal(Lsn begin, Lsn end) {
    std::vector<std::uint8_t> v;
    for (Lsn x = begin; x < end; ++x) v.push_back(wal_byte(x));
    return v;
}

// What the worker does: the window as far as it goes, the rest "from disk"
// (the pattern), which is then offered to the window.
std::vector<std::uint8_t> read(WalWindow& w, Lsn begin, Lsn end, std::size_t& from_disk) {
    std::vector<std::uint8_t> out;
    const Lsn stop = w.copy(begin, end, out);
    if (stop < end) {
        const std::vector<std::uint8_t> disk = wal(stop, end);
        from_disk += disk.size();
        out.insert(out.end(), disk.begin(), disk.end());
        w.remember(stop, disk.data(), disk.size());
    }
    return out;
}

}  // namespace

TEST_CASE("wal window: three readers near the head read the WAL once", "[wal_window]") {
    WalWindow w;
    std::size_t from_disk = 0;
    // Three safekeepers, 128 kB per read (the proposer's max_append_bytes),
    // up to 16 MiB apart (its max_inflight_bytes), the WAL growing as they
    // go: 64 MiB in all.
    constexpr Lsn kChunk = 128 * 1024;
    constexpr Lsn kInFlight = 16u << 20;
    Lsn pos[3] = {kStart, kStart, kStart};
    std::mt19937 rng(7);
    const Lsn total = 64u << 20;
    while (pos[0] < kStart + total || pos[1] < kStart + total || pos[2] < kStart + total) {
        const int k = static_cast<int>(rng() % 3);
        const Lsn lead = std::max({pos[0], pos[1], pos[2]});
        if (pos[k] >= kStart + total) continue;
        // The laggard never falls more than the window behind the leader.
        if (pos[k] == lead && lead - std::min({pos[0], pos[1], pos[2]}) + kChunk > kInFlight)
            continue;
        const Lsn end = pos[k] + kChunk;
        REQUIRE(read(w, pos[k], end, from_disk) == wal(pos[k], end));
        pos[k] = end;
    }
    CHECK(from_disk == total);
}

TEST_CASE("wal window: any order of reads gets the right bytes", "[wal_window]") {
    WalWindow w;
    std::size_t from_disk = 0;
    std::mt19937_64 rng(11);
    Lsn head = kStart;
    for (int i = 0; i < 3000; ++i) {
        const Lsn size = rng() % (3u << 20) + 1;  // up to 3 MiB, crossing the ring's edge
        Lsn begin;
        switch (rng() % 4) {
            case 0: begin = head; break;                                   // the head
            case 1: begin = head > (20u << 20) ? head - (20u << 20) : kStart; break;  // far behind
            case 2: begin = head + rng() % (1u << 20); break;               // a jump forward
            default: begin = head - std::min<Lsn>(head - kStart, rng() % (17u << 20)); break;
        }
        const Lsn end = begin + size;
        REQUIRE(read(w, begin, end, from_disk) == wal(begin, end));
        REQUIRE(w.end() - w.begin() <= WalWindow::kBytes);
        head = std::max(head, end);
    }
}

TEST_CASE("wal window: a read behind the window leaves it alone", "[wal_window]") {
    WalWindow w;
    std::size_t from_disk = 0;
    const Lsn head = kStart + (40u << 20);
    read(w, head, head + (1u << 20), from_disk);
    REQUIRE(w.begin() == head);
    read(w, kStart, kStart + (1u << 20), from_disk);  // a safekeeper catching up
    CHECK(w.begin() == head);
    CHECK(w.end() == head + (1u << 20));
    from_disk = 0;
    CHECK(read(w, head, head + (1u << 20), from_disk) == wal(head, head + (1u << 20)));
    CHECK(from_disk == 0);
}
