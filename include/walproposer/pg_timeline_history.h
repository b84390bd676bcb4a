// PostgreSQL timeline history files ("0000000N.history"), parsed without
// PostgreSQL headers: the one reader of that format in this project (the
// safekeeper's TIMELINE_HISTORY and START_REPLICATION on an earlier timeline
// both use it).
//
// Format, as PostgreSQL's timeline.c writes and reads it: one line per parent
// timeline, "<tli>\t<switchpoint X/X>\t<reason>"; the file of timeline N holds
// the lines of timelines 1..N-1 in order. Like readTimeLineHistory(), leading
// whitespace is skipped and blank lines and '#' comment lines are ignored;
// unlike it, a malformed line is skipped rather than an error (the content
// came from a primary and is served back as is).
//
// Contract: pure functions on value types; thread-safe; no PostgreSQL header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "walproposer/lsn.h"

namespace wp {

struct PgTimelineHistoryEntry {
    std::uint32_t tli = 0;          // a parent timeline
    Lsn switchpoint = kInvalidLsn;  // where it ends (the next timeline starts)
    std::size_t line_end = 0;       // offset just past this entry's line ('\n' included)
};

// The entries of `content` in file order (malformed lines skipped).
std::vector<PgTimelineHistoryEntry> parse_pg_timeline_history(std::string_view content);

// Where timeline `tli` ends and which timeline follows it: the next entry's,
// or `current` (the timeline whose history `content` is) after the last
// entry. nullopt if `content` has no entry for `tli`.
std::optional<std::pair<Lsn, std::uint32_t>> pg_timeline_switch_point(std::string_view content,
                                                                      std::uint32_t tli,
                                                                      std::uint32_t current);

// The history file of the earlier timeline `want_tli` (2 <= want_tli) cut from
// `content`, the file of a later one: PostgreSQL writes a new history file as
// the parent's content plus one line, so it ends after the entry of
// want_tli - 1. nullopt if that entry is missing or want_tli < 2.
std::optional<std::string> pg_timeline_history_prefix(std::string_view content,
                                                      std::uint32_t want_tli);

}  // namespace wp
