#include "walproposer/commit_lag.h"

namespace wp {

void CommitLagTracker::wal_flushed(Lsn lsn, std::int64_t now_us) {
    if (count_ > 0) {
        const Sample& newest = ring_[(head_ + count_ - 1) % kCapacity];
        if (lsn <= newest.lsn) return;
    }
    if (count_ == kCapacity) {
        ring_[(head_ + count_ - 1) % kCapacity] = Sample{lsn, now_us};
        return;
    }
    ring_[(head_ + count_) % kCapacity] = Sample{lsn, now_us};
    ++count_;
}

std::optional<std::int64_t> CommitLagTracker::confirmed(Lsn commit_lsn, std::int64_t now_us) {
    std::optional<std::int64_t> flushed_at;
    while (count_ > 0 && ring_[head_].lsn <= commit_lsn) {
        flushed_at = ring_[head_].time_us;
        head_ = (head_ + 1) % kCapacity;
        --count_;
    }
    if (!flushed_at) return std::nullopt;
    return now_us > *flushed_at ? now_us - *flushed_at : 0;
}

}  // namespace wp
