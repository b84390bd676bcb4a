#include "walproposer/term_history.h"

#include <algorithm>

namespace wp {

bool is_well_formed(const TermHistory& history) {
    if (history.size() > kMaxTermHistoryEntries) return false;
    for (std::size_t i = 0; i < history.size(); ++i) {
        if (history[i].term == 0) return false;
        if (i > 0) {
            if (history[i].term <= history[i - 1].term) return false;
            if (history[i].lsn < history[i - 1].lsn) return false;
        }
    }
    return true;
}

Term last_log_term(const TermHistory& history) {
    return history.empty() ? 0 : history.back().term;
}

TermHistory history_up_to(const TermHistory& history, Lsn flush_lsn) {
    TermHistory result;
    for (const TermLsn& entry : history) {
        if (entry.lsn > flush_lsn) break;
        result.push_back(entry);
    }
    return result;
}

HighestCommonPoint highest_common_point(const TermHistory& proposer, const TermHistory& acceptor_full,
                                        Lsn acceptor_flush_lsn) {
    const TermHistory acceptor = history_up_to(acceptor_full, acceptor_flush_lsn);
    HighestCommonPoint point;
    std::size_t common = 0;  // length of the common prefix
    while (common < proposer.size() && common < acceptor.size() &&
           proposer[common] == acceptor[common])
        ++common;
    if (common == 0) {
        point.lsn = proposer.empty() ? kInvalidLsn : proposer.front().lsn;
        return point;
    }
    const std::size_t last = common - 1;
    const Lsn acceptor_end =
        (last + 1 < acceptor.size()) ? acceptor[last + 1].lsn : acceptor_flush_lsn;
    const Lsn proposer_end =
        (last + 1 < proposer.size()) ? proposer[last + 1].lsn : acceptor_flush_lsn;
    point.found = true;
    point.term = proposer[last].term;
    point.lsn = std::min(acceptor_end, proposer_end);
    return point;
}

std::optional<TermLsn> first_foreign_entry(const TermHistory& own_terms, const TermHistory& other,
                                           Lsn other_end) {
    for (std::size_t i = 0; i < other.size(); ++i) {
        const Lsn begin = other[i].lsn;
        if (begin >= other_end) break;
        const Lsn end = (i + 1 < other.size()) ? std::min(other[i + 1].lsn, other_end) : other_end;
        if (begin >= end) continue;  // empty term: no bytes
        const bool ours = std::any_of(own_terms.begin(), own_terms.end(),
                                      [&](const TermLsn& e) { return e.term == other[i].term; });
        if (!ours) return other[i];
    }
    return std::nullopt;
}

std::string format_history(const TermHistory& history) {
    std::string text = "[";
    for (std::size_t i = 0; i < history.size(); ++i) {
        if (i) text += ", ";
        text += "(" + std::to_string(history[i].term) + ", " + format_lsn(history[i].lsn) + ")";
    }
    return text + "]";
}

}  // namespace wp
