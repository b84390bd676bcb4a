// The worker's replication slot; see worker_slot.h.
extern "C" {
#include "postgres.h"

#include "access/transam.h"
#include "replication/slot.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
}

#include "cxx_guard.h"
#include "guc.h"
#include "wal_retention.h"
#include "worker_slot.h"

// LSN_FORMAT_ARGS uses a C-only type check; this is the same for C++.
#define WP_LSN_ARGS(lsn) static_cast<uint32>((lsn) >> 32), static_cast<uint32>(lsn)

namespace wp::pg {

namespace {

bool g_have_slot = false;

struct SlotArgs {
    XLogRecPtr restart_lsn;  // out: the slot's restart LSN
};

void acquire_or_create_slot_guarded(void* arg) {
    auto* args = static_cast<SlotArgs*>(arg);
    if (SearchNamedReplicationSlot(guc_slot_name, true) == nullptr) {
        ReplicationSlotCreate(guc_slot_name, false, RS_PERSISTENT, false);
        ReplicationSlotReserveWal();
        ReplicationSlotMarkDirty();
        ReplicationSlotSave();
        elog(LOG, "walproposer: created physical replication slot \"%s\" at %X/%X", guc_slot_name,
             WP_LSN_ARGS(MyReplicationSlot->data.restart_lsn));
    } else {
        ReplicationSlotAcquire(guc_slot_name, true);
        if (!SlotIsPhysical(MyReplicationSlot))
            ereport(ERROR,
                    (errmsg("replication slot \"%s\" is not a physical slot", guc_slot_name)));
        if (MyReplicationSlot->data.restart_lsn == InvalidXLogRecPtr) {
            ReplicationSlotReserveWal();
            ReplicationSlotMarkDirty();
            ReplicationSlotSave();
        }
    }
    SpinLockAcquire(&MyReplicationSlot->mutex);
    args->restart_lsn = MyReplicationSlot->data.restart_lsn;
    SpinLockRelease(&MyReplicationSlot->mutex);
}

// A full transaction id from hot-standby feedback (forwarded by the
// safekeepers) as a 32-bit xid the slot can hold: InvalidTransactionId for
// "none" or for a value that is not in the recent past (a bogus or stale
// report); clamped up to the oldest xid still in the clog.
TransactionId feedback_xid(uint64 full) {
    if (full == 0) return InvalidTransactionId;
    const uint64 next = U64FromFullTransactionId(ReadNextFullTransactionId());
    if (full > next || next - full >= (uint64(1) << 31)) return InvalidTransactionId;
    TransactionId xid = static_cast<TransactionId>(full & 0xFFFFFFFF);
    if (!TransactionIdIsNormal(xid)) return InvalidTransactionId;
    LWLockAcquire(XidGenLock, LW_SHARED);
    const TransactionId oldest = ShmemVariableCache->oldestXid;
    LWLockRelease(XidGenLock);
    if (TransactionIdPrecedes(xid, oldest)) xid = oldest;
    return xid;
}

}  // namespace

bool worker_slot_acquire(char* errbuf, std::size_t errbuf_size) {
    SlotArgs slot_args{InvalidXLogRecPtr};
    g_have_slot = pg_guarded_call(acquire_or_create_slot_guarded, &slot_args, errbuf, errbuf_size);
    return g_have_slot;
}

XLogRecPtr worker_slot_restart_lsn() {
    XLogRecPtr point = InvalidXLogRecPtr;
    if (g_have_slot) {
        SpinLockAcquire(&MyReplicationSlot->mutex);
        point = MyReplicationSlot->data.restart_lsn;
        SpinLockRelease(&MyReplicationSlot->mutex);
    }
    return point;
}

void worker_slot_advance(XLogRecPtr truncate_lsn) {
    if (!g_have_slot || truncate_lsn <= kWalVerifyWindowBytes) return;
    const XLogRecPtr lsn = truncate_lsn - kWalVerifyWindowBytes;
    bool moved = false;
    SpinLockAcquire(&MyReplicationSlot->mutex);
    if (lsn > MyReplicationSlot->data.restart_lsn) {
        MyReplicationSlot->data.restart_lsn = lsn;
        moved = true;
    }
    SpinLockRelease(&MyReplicationSlot->mutex);
    if (moved) {
        ReplicationSlotMarkDirty();
        ReplicationSlotsComputeRequiredLSN();
    }
}

void worker_slot_apply_hot_standby_feedback(uint64 full_xmin, uint64 full_catalog_xmin) {
    if (!g_have_slot) return;
    const TransactionId xmin = feedback_xid(full_xmin);
    const TransactionId catalog_xmin = feedback_xid(full_catalog_xmin);
    bool changed = false;
    SpinLockAcquire(&MyReplicationSlot->mutex);
    if (MyReplicationSlot->data.xmin != xmin || MyReplicationSlot->effective_xmin != xmin ||
        MyReplicationSlot->data.catalog_xmin != catalog_xmin ||
        MyReplicationSlot->effective_catalog_xmin != catalog_xmin) {
        MyReplicationSlot->data.xmin = xmin;
        MyReplicationSlot->effective_xmin = xmin;
        MyReplicationSlot->data.catalog_xmin = catalog_xmin;
        MyReplicationSlot->effective_catalog_xmin = catalog_xmin;
        changed = true;
    }
    SpinLockRelease(&MyReplicationSlot->mutex);
    if (changed) {
        ReplicationSlotMarkDirty();
        ReplicationSlotsComputeRequiredXmin(false);
    }
}

}  // namespace wp::pg
