#include "walproposer/term_history.h"

#include <limits>

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
    // The highest term both histories hold with the same start LSN. A term's
    // entry is made once, so sharing it means sharing everything before it,
    // even when one side has trimmed its older entries (trim_history).
    for (std::size_t j = acceptor.size(); j-- > 0;) {
        const auto it = std::lower_bound(proposer.begin(), proposer.end(), acceptor[j].term,
                                         [](const TermLsn& e, Term t) { return e.term < t; });
        if (it == proposer.end() || *it != acceptor[j]) continue;
        const std::size_t i = static_cast<std::size_t>(it - proposer.begin());
        const Lsn acceptor_end =
            (j + 1 < acceptor.size()) ? acceptor[j + 1].lsn : acceptor_flush_lsn;
        const Lsn proposer_end =
            (i + 1 < proposer.size()) ? proposer[i + 1].lsn : acceptor_flush_lsn;
        point.found = true;
        point.term = acceptor[j].term;
        point.lsn = std::min(acceptor_end, proposer_end);
        return point;
    }
    point.lsn = proposer.empty() ? kInvalidLsn : proposer.front().lsn;
    return point;
}

TermHistory trim_history(const TermHistory& history, Lsn horizon_lsn) {
    TermHistory out;
    for (std::size_t i = 0; i < history.size(); ++i) {
        const bool last = i + 1 == history.size();
        if (!last && history[i + 1].lsn < horizon_lsn) continue;      // wholly below the horizon
        if (!last && history[i + 1].lsn == history[i].lsn) continue;  // wrote no byte
        out.push_back(history[i]);
    }
    return out;
}

std::optional<TermLsn> first_foreign_entry(const TermHistory& own_terms, const TermHistory& other,
                                           Lsn other_end, Lsn known_own_below) {
    for (std::size_t i = 0; i < other.size(); ++i) {
        const Lsn begin = other[i].lsn;
        if (begin >= other_end) break;
        const Lsn end = (i + 1 < other.size()) ? std::min(other[i + 1].lsn, other_end) : other_end;
        if (begin >= end) continue;            // empty term: no bytes
        if (end <= known_own_below) continue;  // bytes already known to be ours
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

std::string format_term_history_body(const TermHistoryFileBody& body) {
    std::string text = "pg_timeline " + std::to_string(body.pg_timeline) + "\n";
    for (const auto& entry : body.history)
        text += "term " + std::to_string(entry.term) + " " + format_lsn(entry.lsn) + "\n";
    return text;
}

namespace {

// A decimal number that fits `T`, the whole of `text`.
template <typename T>
std::optional<T> parse_decimal(std::string_view text) {
    if (text.empty() || text.size() > 20) return std::nullopt;
    std::uint64_t value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        const std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
        if (value > (UINT64_MAX - digit) / 10) return std::nullopt;
        value = value * 10 + digit;
    }
    if (value > static_cast<std::uint64_t>(std::numeric_limits<T>::max())) return std::nullopt;
    return static_cast<T>(value);
}

}  // namespace

Result<TermHistoryFileBody> parse_term_history_body(std::string_view text) {
    TermHistoryFileBody body;
    bool have_timeline = false;
    std::size_t line_number = 0;
    while (!text.empty()) {
        ++line_number;
        const std::size_t eol = text.find('\n');
        if (eol == std::string_view::npos)
            return Status::corrupt("line " + std::to_string(line_number) + " is not terminated");
        const std::string_view line = text.substr(0, eol);
        text.remove_prefix(eol + 1);
        const auto bad = [&](const char* why) {
            return Status::corrupt("line " + std::to_string(line_number) + ": " + why);
        };
        if (!have_timeline) {
            constexpr std::string_view kPrefix = "pg_timeline ";
            if (line.substr(0, kPrefix.size()) != kPrefix) return bad("expected pg_timeline <N>");
            auto timeline = parse_decimal<std::uint32_t>(line.substr(kPrefix.size()));
            if (!timeline) return bad("bad PostgreSQL timeline");
            body.pg_timeline = *timeline;
            have_timeline = true;
            continue;
        }
        constexpr std::string_view kPrefix = "term ";
        if (line.substr(0, kPrefix.size()) != kPrefix) return bad("expected term <T> <X/X>");
        const std::string_view rest = line.substr(kPrefix.size());
        const std::size_t space = rest.find(' ');
        if (space == std::string_view::npos) return bad("expected term <T> <X/X>");
        auto term = parse_decimal<std::uint64_t>(rest.substr(0, space));
        auto lsn = parse_lsn(rest.substr(space + 1));
        if (!term || !lsn) return bad("bad term or LSN");
        body.history.push_back({*term, *lsn});
    }
    if (!have_timeline) return Status::corrupt("no pg_timeline line");
    if (!is_well_formed(body.history))
        return Status::corrupt("the history is not well formed (terms and LSNs must ascend)");
    return body;
}

}  // namespace wp
