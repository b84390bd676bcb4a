// Helpers shared by the core's unit tests. The test doubles themselves
// (in-memory acceptor storage, in-memory WAL) are in test/support/, shared
// with the simulator.
#pragma once

#include <cstddef>

#include "support/memory_acceptor_storage.h"
#include "support/memory_wal.h"
#include "walproposer/messages.h"

namespace wp::testing {

// A proposer's greeting for system 99 on PostgreSQL timeline 2.
inline ProposerGreeting greeting() {
    ProposerGreeting g;
    g.system_id = 99;
    g.pg_version = 150004;
    g.wal_segment_size = 16 << 20;
    g.pg_timeline = 2;
    g.tenant_id[0] = 1;
    g.timeline_id[0] = 2;
    return g;
}

// An AppendRequest of `n` bytes 0x5A at `begin` in `term`.
inline AppendRequest append(Term term, Lsn begin, std::size_t n, Lsn commit = kInvalidLsn) {
    AppendRequest r;
    r.term = term;
    r.begin_lsn = begin;
    r.end_lsn = begin + n;
    r.commit_lsn = commit;
    r.wal.assign(n, 0x5A);
    return r;
}

}  // namespace wp::testing
