// In-memory AcceptorStorage for the core's unit tests and the simulator,
// with a model of the OS page cache: written bytes survive a process crash
// (recover()), only synced bytes survive a power loss (power_loss()).
//
// It also records the name of every storage call in `calls` ("persist",
// "write", "flush", "read", "truncate") and can fail the next mutating call
// (`fail_next`, reported like a full disk) so tests can check the acceptor's
// order of effects and its error paths.
//
// Fields are public on purpose: tests inspect and damage them. One owner,
// not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "walproposer/acceptor.h"

namespace wp::testing {

class MemoryAcceptorStorage : public AcceptorStorage {
public:
    AcceptorDurableState durable;
    Lsn start = kInvalidLsn;          // first LSN held; 0 = no WAL yet
    std::vector<std::uint8_t> bytes;  // [start, start + bytes.size()): written (page cache)
    Lsn synced_end = kInvalidLsn;     // on disk
    Lsn flushed_end = kInvalidLsn;    // what the acceptor was told is durable
    std::vector<std::string> calls;
    bool fail_next = false;

    Lsn written_end() const { return start ? start + bytes.size() : kInvalidLsn; }

    Status persist_state(const AcceptorDurableState& state) override;
    Status write_wal(Lsn begin, const std::uint8_t* data, std::size_t size) override;
    Status flush_wal() override;
    Status read_wal(Lsn begin, Lsn end, std::vector<std::uint8_t>& out) override;
    Status truncate_wal(Lsn end) override;
    Lsn flush_lsn() const override { return flushed_end; }

    // Start-up after a process crash: every written byte is found in the
    // files; a correct daemon syncs them (sync_first) before reporting them
    // as flushed.
    void recover(bool sync_first);
    // Power loss: what was never synced is gone.
    void power_loss();
    // Are the synced bytes [from, to) equal to `wal`, whose first byte is at
    // LSN `wal_base`?
    bool durable_matches(const std::vector<std::uint8_t>& wal, Lsn wal_base, Lsn from,
                         Lsn to) const;

private:
    Status record(const char* call);
};

}  // namespace wp::testing
