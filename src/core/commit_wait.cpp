// See commit_wait.h.
#include "walproposer/commit_wait.h"

#include <cstdio>

namespace wp {

namespace {

std::string seconds(TimeMs ms) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f s", static_cast<double>(ms) / 1000.0);
    return text;
}

}  // namespace

std::optional<std::string> CommitWaitMonitor::update(TimeMs now, Lsn oldest_waiter,
                                                     const ProposerStatus& status,
                                                     const std::vector<std::string>& addresses) {
    const bool waiting = oldest_waiter != kInvalidLsn && oldest_waiter > status.commit_lsn;
    if (!waiting) {
        std::optional<std::string> line;
        if (waiting_ && reported_)
            line = "COMMITs are confirmed again after " + seconds(now - waiting_since_) +
                   " of waiting (the quorum confirmed " + format_lsn(status.commit_lsn) + ")";
        waiting_ = reported_ = false;
        waiting_since_ = last_report_ = 0;
        return line;
    }
    if (!waiting_) {
        waiting_ = true;
        waiting_since_ = now;
    }
    const bool first = !reported_ && now - waiting_since_ >= settings_.first_report_after_ms;
    const bool again = reported_ && now - last_report_ >= settings_.repeat_every_ms;
    if (!first && !again) return std::nullopt;
    reported_ = true;
    last_report_ = now;
    return describe(now, oldest_waiter, status, addresses);
}

std::string CommitWaitMonitor::describe(TimeMs now, Lsn oldest_waiter, const ProposerStatus& status,
                                        const std::vector<std::string>& addresses) const {
    std::string line = "COMMITs have waited " + seconds(now - waiting_since_) +
                       " for the safekeepers to confirm " + format_lsn(oldest_waiter) +
                       " (confirmed up to " + format_lsn(status.commit_lsn) + ")";
    if (status.state == ProposerState::kSuperseded) {
        line += ": this primary was superseded (" + status.superseded_reason +
                "); its COMMITs will never be confirmed: fail over to a standby";
        return line;
    }
    std::size_t members = 0, streaming = 0;
    std::string missing;
    for (std::size_t i = 0; i < status.acceptors.size(); ++i) {
        const AcceptorStatus& a = status.acceptors[i];
        if (!a.member) continue;
        ++members;
        if (a.state == AcceptorConnState::kStreaming) {
            ++streaming;
            continue;
        }
        missing += missing.empty() ? "" : ", ";
        missing += i < addresses.size() ? addresses[i] : "#" + std::to_string(i);
        missing += " (" + std::string(to_string(a.state));
        if (!a.last_error.empty()) missing += ": " + a.last_error;
        missing += ")";
    }
    line += "; " + std::to_string(streaming) + " of " + std::to_string(members) +
            " safekeepers streaming, " + std::to_string(status.quorum) + " needed";
    if (status.state != ProposerState::kElected)
        line += "; the proposer is " + std::string(to_string(status.state));
    if (!missing.empty()) line += "; not streaming: " + missing;
    return line;
}

}  // namespace wp
