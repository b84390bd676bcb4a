// Parser of the replication-protocol commands a safekeeper serves to WAL
// consumers (stock standbys, pg_receivewal):
//
//   IDENTIFY_SYSTEM
//   TIMELINE_HISTORY <tli>
//   START_REPLICATION [SLOT <name>] [PHYSICAL] <X/X> [TIMELINE <tli>]
//   READ_REPLICATION_SLOT <name>
//   CREATE_REPLICATION_SLOT <name> [TEMPORARY] PHYSICAL [RESERVE_WAL]
//   CREATE_REPLICATION_SLOT <name> [TEMPORARY] PHYSICAL (RESERVE_WAL [bool], ...)
//   DROP_REPLICATION_SLOT <name> [WAIT]
//   SHOW <name>
//
// Keywords are case-insensitive; a slot name may be a plain identifier
// (folded to lower case, as PostgreSQL does) or a double-quoted one ("" is
// an escaped quote). A trailing ';' is allowed. Anything else is either
// "not a replication command" (kind kNone: the caller decides) or a syntax
// error with a message.
//
// Contract: pure function, no IO, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "walproposer/lsn.h"

namespace wp::sk {

enum class ReplicationCommandKind {
    kNone,  // not one of the commands above
    kIdentifySystem,
    kTimelineHistory,
    kStartReplication,
    kReadReplicationSlot,
    kCreateReplicationSlot,
    kDropReplicationSlot,
    kShow,
};

struct ReplicationCommand {
    ReplicationCommandKind kind = ReplicationCommandKind::kNone;
    std::uint32_t timeline = 0;   // TIMELINE_HISTORY; START_REPLICATION (0 = not given)
    Lsn start_lsn = kInvalidLsn;  // START_REPLICATION
    std::string slot_name;        // START_REPLICATION (empty = none), READ/CREATE/DROP_REPLICATION_SLOT
    bool temporary = false;       // CREATE_REPLICATION_SLOT ... TEMPORARY
    bool reserve_wal = false;     // CREATE_REPLICATION_SLOT ... RESERVE_WAL
    bool wait = false;            // DROP_REPLICATION_SLOT ... WAIT
    std::string show_name;        // SHOW (lower case)
};

struct ReplicationCommandParse {
    ReplicationCommand command;
    std::string error;  // non-empty: a syntax error (SQLSTATE 42601)
};

ReplicationCommandParse parse_replication_command(const std::string& query);

}  // namespace wp::sk
