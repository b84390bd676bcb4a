// The worker's synchronous-replication participation; see worker_syncrep.h.
extern "C" {
#include "postgres.h"

#include "replication/syncrep.h"
#include "replication/walsender.h"
#include "replication/walsender_private.h"
#include "storage/spin.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
}

#include "guc.h"
#include "worker_syncrep.h"

namespace wp::pg {

void worker_syncrep_become_participant() {
    am_walsender = true;
    InitWalSender();
    worker_syncrep_reload_config();
    WalSndSetState(WALSNDSTATE_STREAMING);
}

void worker_syncrep_reload_config() {
    SetConfigOption("application_name", guc_application_name, PGC_USERSET, PGC_S_SESSION);
    SyncRepInitConfig();
}

void worker_syncrep_publish_commit_lsn(XLogRecPtr commit_lsn, XLogRecPtr sent_lsn) {
    bool changed = false;
    SpinLockAcquire(&MyWalSnd->mutex);
    if (commit_lsn > MyWalSnd->flush) {
        MyWalSnd->write = commit_lsn;
        MyWalSnd->flush = commit_lsn;
        MyWalSnd->apply = commit_lsn;
        changed = true;
    }
    if (sent_lsn > MyWalSnd->sentPtr) MyWalSnd->sentPtr = sent_lsn;
    MyWalSnd->replyTime = GetCurrentTimestamp();
    SpinLockRelease(&MyWalSnd->mutex);
    if (changed) SyncRepReleaseWaiters();
}

}  // namespace wp::pg
