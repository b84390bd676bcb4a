// IO counters of one timeline's storage, kept by WalStorage and read by the
// HTTP API's /metrics (http/metrics.h renders them). All members are
// atomics: safe to update from IO threads and read from the HTTP thread at
// any time (a reader may see a sum/count pair that is off by one
// observation; that is fine for metrics).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace wp::sk {

// A fixed-bucket histogram of durations.
class Histogram {
public:
    // Upper bounds in seconds (the +Inf bucket is implicit).
    static constexpr std::array<double, 12> kBounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                      0.01,   0.025,   0.05,   0.1,   0.5,    1.0};
    void observe(double seconds) {
        std::size_t i = 0;
        while (i < kBounds.size() && seconds > kBounds[i]) ++i;
        buckets_[i].fetch_add(1, std::memory_order_relaxed);
        count_.fetch_add(1, std::memory_order_relaxed);
        sum_micros_.fetch_add(static_cast<std::uint64_t>(seconds * 1e6), std::memory_order_relaxed);
    }
    // Observations in bucket i (i == kBounds.size() is +Inf), not cumulative.
    std::uint64_t bucket(std::size_t i) const { return buckets_[i].load(std::memory_order_relaxed); }
    std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }
    double sum_seconds() const {
        return static_cast<double>(sum_micros_.load(std::memory_order_relaxed)) / 1e6;
    }

private:
    std::array<std::atomic<std::uint64_t>, kBounds.size() + 1> buckets_{};
    std::atomic<std::uint64_t> count_{0};
    std::atomic<std::uint64_t> sum_micros_{0};
};

struct StorageCounters {
    std::atomic<std::uint64_t> wal_bytes_written{0};
    std::atomic<std::uint64_t> fsync_count{0};
    std::atomic<std::uint64_t> flush_hint_writes{0};
    std::atomic<std::uint64_t> segments_created{0};
    // Block reservations (posix_fallocate) ahead of WAL writes in a sparse segment.
    std::atomic<std::uint64_t> segment_reservations{0};
    // Zeros written over reserved blocks ahead of small WAL writes
    // (WalStorage::initialize_ahead).
    std::atomic<std::uint64_t> zero_ahead_bytes{0};
    std::atomic<std::uint64_t> wal_removed_bytes{0};  // WAL retention
    std::atomic<std::uint64_t> disk_bytes{0};         // segment files held
    Histogram fsync_seconds;
};

}  // namespace wp::sk
