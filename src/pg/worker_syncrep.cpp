// The worker's synchronous-replication participation; see worker_syncrep.h.
extern "C" {
#include "postgres.h"

#include "replication/syncrep.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
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

void worker_syncrep_publish_lag(TimeOffset lag_us) {
    SpinLockAcquire(&MyWalSnd->mutex);
    MyWalSnd->writeLag = lag_us;
    MyWalSnd->flushLag = lag_us;
    MyWalSnd->applyLag = lag_us;
    SpinLockRelease(&MyWalSnd->mutex);
}

XLogRecPtr worker_syncrep_oldest_waiter() {
    XLogRecPtr oldest = InvalidXLogRecPtr;
    LWLockAcquire(SyncRepLock, LW_SHARED);
    for (int mode = 0; mode < NUM_SYNC_REP_WAIT_MODE; ++mode) {
        // Each queue is ordered by LSN: its head waits for the lowest one.
        SHM_QUEUE* queue = &WalSndCtl->SyncRepQueue[mode];
        PGPROC* head = reinterpret_cast<PGPROC*>(
            SHMQueueNext(queue, queue, offsetof(PGPROC, syncRepLinks)));
        if (head != nullptr && (oldest == InvalidXLogRecPtr || head->waitLSN < oldest))
            oldest = head->waitLSN;
    }
    LWLockRelease(SyncRepLock);
    return oldest;
}

}  // namespace wp::pg
