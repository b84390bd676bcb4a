// What the walproposer worker gives its driver: the inputs gathered from
// PostgreSQL (system id, timeline, its history, the timeline start) and the
// walproposer.* settings (guc.h), turned into DriverSettings; and the
// worker's handling of a configuration reload.
//
// Contract: used only from the walproposer worker's main thread. Functions
// that call PostgreSQL keep only trivially destructible locals and may raise
// an ERROR where they say so; worker_create_driver runs its C++ under run_cxx
// and reports failures as a message (cxx_guard.h).
#pragma once

extern "C" {
#include "postgres.h"

#include "access/xlogdefs.h"
}

#include <cstddef>

namespace wp::pg {

class Driver;

// Plain inputs gathered from PostgreSQL for the driver's settings.
struct DriverInputs {
    uint64 system_id;
    TimeLineID tli;
    XLogRecPtr timeline_start;
    XLogRecPtr switch_point;  // where timeline `tli` begins; 0 on timeline 1
    char* history_content;    // the PG timeline history file (palloc'd), null on 1
    int history_length;
    uint64 random_seed;
};

// Fills everything but timeline_start: the system id, the WAL insertion
// timeline, its history file and switch point, a random seed. A corrupt
// history file raises ERROR here, before any C++ object exists.
void worker_gather_driver_inputs(DriverInputs* inputs);

// Where the timeline starts on empty safekeepers: the start of the segment
// holding the slot's restart point (worker_slot.h), or of the latest
// checkpoint's redo point without a slot. That WAL is still in pg_wal.
XLogRecPtr worker_timeline_start_point();

// A new driver for walproposer.safekeepers and the other settings, or null
// with the reason in errbuf (a bad setting, an unreadable term history, out
// of memory). The caller owns the driver and deletes it under run_cxx.
Driver* worker_create_driver(const DriverInputs& inputs, char* errbuf, std::size_t errbuf_size);

// What a reload asks of the worker.
enum class ReloadAction {
    kNone,              // walproposer.safekeepers did not change (or the change is refused)
    kRestartDriver,     // legacy list: reconnect to the new list
    kChangeMembership,  // member form with a configuration: worker_request_membership
};

// Re-reads the configuration file (after SIGHUP), re-applies
// walproposer.application_name to synchronous replication, and says what to
// do about walproposer.safekeepers (logged): with a running configuration
// (`driver` has one) and the member form, a membership change; a plain list
// while a configuration runs is refused with a WARNING (a configuration is
// never dropped); otherwise (legacy list, or the first switch to the member
// form) the driver is re-created. Can raise an ERROR only as
// ProcessConfigFile does.
// A changed walproposer.safekeeper_conninfo is handed to `driver` for the
// connections it makes from now on.
ReloadAction worker_reload_config(Driver* driver);

// Asks `driver` for the member set of walproposer.safekeepers (member form).
// False with the reason in errbuf when it cannot be asked.
bool worker_request_membership(Driver* driver, char* errbuf, std::size_t errbuf_size);

}  // namespace wp::pg
