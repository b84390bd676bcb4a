// Term history: which proposer (term) wrote which part of the WAL.
//
// A term history is a list of (term, start_lsn) entries, terms strictly
// increasing and start LSNs non-decreasing. Entry i says "WAL from
// start_lsn[i] up to start_lsn[i+1] (or up to the end of the holder's WAL for
// the last entry) was written by the proposer of term[i]". A term's entry is
// created once, by the proposer elected in that term (its history is the
// donor's history plus (new_term, donor_flush_lsn)), so two histories that
// contain the same (term, start_lsn) agree on everything before it.
//
// Contract: pure functions on value types; thread-safe; no allocation beyond
// the returned values. No PostgreSQL header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "walproposer/lsn.h"
#include "walproposer/result.h"

namespace wp {

struct TermLsn {
    Term term = 0;
    Lsn lsn = kInvalidLsn;
    bool operator==(const TermLsn& o) const { return term == o.term && lsn == o.lsn; }
    bool operator!=(const TermLsn& o) const { return !(*this == o); }
};

using TermHistory = std::vector<TermLsn>;

// Upper bound on entries accepted from the wire or stored (one per election).
constexpr std::size_t kMaxTermHistoryEntries = 10000;

// True iff terms are strictly increasing, start LSNs non-decreasing, no term is
// 0, and the size is at most kMaxTermHistoryEntries. The empty history is valid.
bool is_well_formed(const TermHistory& history);

// Term of the last entry, 0 for an empty history.
Term last_log_term(const TermHistory& history);

// The part of `history` an acceptor may report when its durable WAL ends at
// `flush_lsn`: the entries whose start_lsn <= flush_lsn. (An acceptor persists
// a proposer's whole history before it has received that proposer's WAL; it
// must not claim terms whose WAL it does not hold.) An entry starting exactly
// at flush_lsn is kept: the acceptor holds everything before that term.
TermHistory history_up_to(const TermHistory& history, Lsn flush_lsn);

// Result of comparing a proposer's history with an acceptor's.
struct HighestCommonPoint {
    // False when the histories share no entry (e.g. the acceptor is empty);
    // then `term` is 0 and `lsn` is the proposer's first start LSN (the
    // timeline start), or 0 if the proposer's history is empty too.
    bool found = false;
    Term term = 0;  // last term both histories contain (same start LSN)
    Lsn lsn = kInvalidLsn;  // first LSN at which the two WALs may differ
};

// Highest common point of a proposer's and an acceptor's WAL (after Neon RFC
// 013, generalised to trimmed histories): find the highest term both histories
// contain with the same start LSN (entries of the acceptor past
// `acceptor_flush_lsn` are ignored). Sharing a term's entry means sharing all
// WAL before it, because a term's entry is made once by its proposer. That
// term T ends, on each side, at the start of the next entry, or for a last
// entry at `acceptor_flush_lsn` (the proposer holds at least that much). The
// common point is the smaller of the two ends: the acceptor keeps its WAL
// below it and must truncate everything at and above it. No common term: not
// found, and the LSN is the proposer's first start (its oldest kept entry).
HighestCommonPoint highest_common_point(const TermHistory& proposer, const TermHistory& acceptor,
                                        Lsn acceptor_flush_lsn);

// Bounded histories (the rule is in docs/consensus.md, "Trimming"): drops
//  * entries wholly below `horizon_lsn` (the next entry starts below it), where
//    `horizon_lsn` is WAL that every member holds identically (a truncate_lsn,
//    always <= a commit_lsn); the entry that wrote the byte just below the
//    horizon stays, so a member whose WAL ends exactly there still shares it;
//  * entries whose term wrote no byte (the next entry starts at the same LSN).
// The last entry is always kept. Trimming changes no highest common point
// between histories that share the horizon.
TermHistory trim_history(const TermHistory& history, Lsn horizon_lsn);

// The first entry of `other` (a WAL history ending at `other_end`) that
// contributed bytes (start < end) above `known_own_below` and whose term is
// not among the terms of `own_terms`; nullopt if there is none. A primary
// passes the terms it was elected in (every byte an acceptor holds under such
// a term came from that primary's own WAL) and the LSN below which it already
// proved the quorum's WAL to be its own (its oldest kept own term's start):
// a WAL made only of those is a prefix of its WAL. Empty terms (start == end)
// are skipped: they contributed no bytes.
std::optional<TermLsn> first_foreign_entry(const TermHistory& own_terms, const TermHistory& other,
                                           Lsn other_end, Lsn known_own_below = kInvalidLsn);

// "[(1, 0/1000000), (3, 0/1000A00)]"
std::string format_history(const TermHistory& history);

// The lines of the primary's term history file (walproposer.term_history,
// docs/extension.md) after its header line and before its checksum line:
//   pg_timeline <N>
//   term <T> <X/X>      (zero or more, well formed: terms and LSNs ascending)
// The file's header and checksum are the extension's (src/pg/); this part
// is here so it is parsed without PostgreSQL and can be fuzzed.
struct TermHistoryFileBody {
    std::uint32_t pg_timeline = 0;
    TermHistory history;
};
std::string format_term_history_body(const TermHistoryFileBody& body);
// Error (kCorrupt) naming the first bad line.
Result<TermHistoryFileBody> parse_term_history_body(std::string_view text);

}  // namespace wp
