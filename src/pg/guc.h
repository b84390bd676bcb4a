// walproposer's settings (GUCs). Defined by define_gucs() from _PG_init;
// the values below are owned by PostgreSQL's GUC machinery and valid for the
// life of the process; read them only from the process's main thread.
#pragma once

namespace wp::pg {

extern char* guc_safekeepers;        // walproposer.safekeepers, "host:port,..." (SIGHUP)
extern char* guc_tenant_id;          // walproposer.tenant_id, "" or 32 hex digits (postmaster)
extern char* guc_timeline_id;        // walproposer.timeline_id, likewise
extern char* guc_application_name;   // walproposer.application_name (SIGHUP)
extern char* guc_safekeeper_conninfo; // walproposer.safekeeper_conninfo, libpq options (SIGHUP)
extern char* guc_slot_name;          // walproposer.slot_name (postmaster)
extern int guc_connect_timeout_ms;   // walproposer.connect_timeout (SIGHUP)
extern int guc_reconnect_timeout_ms; // walproposer.reconnect_timeout (SIGHUP)
extern int guc_shutdown_timeout_ms;  // walproposer.shutdown_timeout (SIGHUP)

// Registers every walproposer.* setting; call once from _PG_init.
void define_gucs();

}  // namespace wp::pg
