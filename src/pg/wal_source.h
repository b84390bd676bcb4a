// Reads the primary's WAL from pg_wal with PostgreSQL's own reader
// (WALRead), for the proposer core (wp::WalReader).
//
// Contract: created in the walproposer worker after InitWalSender; lives for
// the process. read_wal() never raises a PostgreSQL error: the segment open
// callback used here reports a missing or unreadable segment as an error
// value instead of ereport(ERROR) (PostgreSQL's wal_segment_open would
// raise), so a safekeeper that needs recycled WAL gets an error on its row
// and the worker keeps serving the others. Reads follow the timeline
// history, so WAL from before a promotion is read from the old timeline's
// segments. Single-threaded.
//
// Read once, send to all: the proposer asks for the same range once per
// safekeeper; the bytes of the most recent reads (up to kCacheBytes, a
// window that slides forward with contiguous reads) are kept and served from
// memory. Flushed WAL of the worker's timeline never changes while the
// worker runs, so the copy cannot go stale. The timeline history is read
// from its file once per insertion timeline, not once per read.
#pragma once

#include <cstdint>
#include <vector>

#include "walproposer/proposer.h"

struct XLogReaderState;

namespace wp::pg {

class PgWalSource final : public wp::WalReader {
public:
    PgWalSource();
    ~PgWalSource() override;
    PgWalSource(const PgWalSource&) = delete;
    PgWalSource& operator=(const PgWalSource&) = delete;

    wp::Status read_wal(wp::Lsn begin, wp::Lsn end, std::vector<std::uint8_t>& out) override;

    // Bytes of recent WAL kept for the other safekeepers' reads.
    static constexpr std::size_t kCacheBytes = 4u << 20;

private:
    wp::Status read_from_disk(wp::Lsn begin, wp::Lsn end, std::vector<std::uint8_t>& out);
    void remember(wp::Lsn begin, const std::uint8_t* bytes, std::size_t size);

    XLogReaderState* reader_;
    // WAL [cache_begin_, cache_begin_ + cache_.size()).
    wp::Lsn cache_begin_ = 0;
    std::vector<std::uint8_t> cache_;
};

}  // namespace wp::pg
