// The primary's own term history, persisted in the data directory as
// `walproposer.term_history` (format in docs/extension.md).
//
// It lists the terms whose WAL this primary wrote or verified; the proposer
// core uses it to recognise that the WAL a quorum holds is its own (or that
// it has been superseded). Durability: save() returns ok only after the new
// file is fsynced and atomically renamed into place (directory fsynced).
// Called from the worker only; the functions keep no state.
#pragma once

#include <cstdint>

#include "walproposer/result.h"
#include "walproposer/term_history.h"

namespace wp::pg {

// Loads the history. A missing file is an empty history. A file of another
// PostgreSQL timeline than `pg_timeline` is ignored (empty history): its
// WAL was written by another primary. A corrupt file is an error.
wp::Result<wp::TermHistory> load_term_history(std::uint32_t pg_timeline);

wp::Status save_term_history(const wp::TermHistory& history, std::uint32_t pg_timeline);

}  // namespace wp::pg
