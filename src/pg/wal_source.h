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
// safekeeper; the newest WAL read is kept in a WalWindow (wal_window.h, as
// large as the proposer's in-flight limit per safekeeper) and served from
// memory, so safekeepers streaming at different points near the head all
// read from memory, and one catching up from further back reads from disk
// without disturbing them. Flushed WAL of the worker's timeline never
// changes while the worker runs, so the copy cannot go stale. The timeline
// history is read from its file once per insertion timeline, not once per
// read.
#pragma once

#include <cstdint>
#include <vector>

#include "wal_window.h"
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

private:
    wp::Status read_from_disk(wp::Lsn begin, wp::Lsn end, std::vector<std::uint8_t>& out);

    XLogReaderState* reader_;
    WalWindow window_;
};

}  // namespace wp::pg
