// Tells the operator when COMMITs wait for a quorum that is not there.
//
// The worker calls update() on every pass of its loop with the lowest LSN a
// backend waits for (PostgreSQL's synchronous-replication queue) and the
// proposer's status. When that LSN stays above the quorum's commit LSN for
// `first_report_after_ms`, update() returns one log line saying what the
// COMMITs wait for and which safekeepers are not streaming (and why), then
// at most one more every `repeat_every_ms` while the wait lasts, and one
// line when COMMITs are confirmed again. waiting_since() is when the current
// wait began (for the status view).
//
// Contract: pure logic over the values given (no clock, no IO); one object
// per proposer, single-threaded.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "walproposer/lsn.h"
#include "walproposer/proposer.h"

namespace wp {

class CommitWaitMonitor {
public:
    struct Settings {
        TimeMs first_report_after_ms = 5000;
        TimeMs repeat_every_ms = 30000;
    };

    CommitWaitMonitor() = default;
    explicit CommitWaitMonitor(Settings settings) : settings_(settings) {}

    // oldest_waiter: the lowest LSN a COMMIT waits for (kInvalidLsn: none
    // waits). addresses[i]: how to name acceptor slot i in the message.
    std::optional<std::string> update(TimeMs now, Lsn oldest_waiter, const ProposerStatus& status,
                                      const std::vector<std::string>& addresses);

    // Whether a COMMIT waits beyond the commit LSN, and since when.
    bool waiting() const { return waiting_; }
    TimeMs waiting_since() const { return waiting_since_; }

private:
    std::string describe(TimeMs now, Lsn oldest_waiter, const ProposerStatus& status,
                         const std::vector<std::string>& addresses) const;

    Settings settings_;
    bool waiting_ = false;
    bool reported_ = false;  // a line was written for the current wait
    TimeMs waiting_since_ = 0;
    TimeMs last_report_ = 0;
};

}  // namespace wp
