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

private:
    XLogReaderState* reader_;
};

}  // namespace wp::pg
