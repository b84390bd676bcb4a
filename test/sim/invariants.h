// The invariants wpsim checks (docs/consensus.md, "Simulator"): the
// numbered invariants 1-4 and 6 of docs/design.md, the failover checks and
// the one-streamer connection rule. They are checked by World's methods in
// invariants.cpp (on_elected, on_commit, refresh_sync_wal, on_sync_done,
// check_invariants) and, where a single message shows the breach, in
// world.cpp's deliver_to_acceptor (invariant 6, one streamer per timeline)
// and restart_acceptor (invariant 4).
#pragma once

#include <string>

namespace wpsim {

// The first violation of a schedule: which invariant, and the evidence.
struct Violation {
    std::string invariant;
    std::string detail;
};

}  // namespace wpsim
