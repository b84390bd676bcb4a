// The WAL consumers (standbys, pg_receivewal) streaming one timeline, as the
// WAL sender threads report them, for the status API, the metrics, the
// hot-standby feedback forwarded to the proposer, and commit notification.
//
// Commit notification: each consumer registers an eventfd; notify_all()
// (called by Timeline when commit_lsn advances, and when the timeline stops
// being active) adds 1 to every registered eventfd, so a sender blocked in
// poll() wakes at once. No polling.
//
// Slots: a consumer may name a slot (START_REPLICATION SLOT s). The set
// remembers, in memory only, the highest flush position reported under each
// slot name, which READ_REPLICATION_SLOT returns for a name that is not a
// persisted slot (retention/slot_store.h holds those, and only they keep WAL).
//
// Thread-safety: every member is thread-safe (one internal mutex, never held
// while calling out).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "walproposer/lsn.h"

namespace wp::sk {

struct ConsumerInfo {
    std::uint64_t id = 0;
    std::string peer;
    std::string application_name;
    std::string role;       // the authenticated role ("" under --auth trust)
    std::string slot_name;  // empty = none
    std::uint32_t pg_timeline = 0;
    Lsn start_lsn = kInvalidLsn;  // requested start
    Lsn sent_lsn = kInvalidLsn;   // end of WAL sent
    // From the last standby status update ('r'); 0 = not reported.
    Lsn write_lsn = kInvalidLsn, flush_lsn = kInvalidLsn, apply_lsn = kInvalidLsn;
    // From the last hot-standby feedback ('h'), as full transaction ids
    // (epoch << 32 | xid); 0 = none.
    std::uint64_t hs_xmin = 0, hs_catalog_xmin = 0;
    std::int64_t last_reply_unix_ms = 0;  // 0 = never
};

class ConsumerSet {
  public:
    // Registers a consumer; `notify_fd` is an eventfd (or -1). Returns its id.
    std::uint64_t add(ConsumerInfo info, int notify_fd);
    // Removes it (its eventfd is no longer written). Idempotent.
    void remove(std::uint64_t id);
    void set_sent(std::uint64_t id, Lsn sent_lsn);
    void set_reply(std::uint64_t id, Lsn write, Lsn flush, Lsn apply, std::int64_t now_unix_ms);
    // Returns true if the minimum over all consumers changed.
    bool set_hot_standby_feedback(std::uint64_t id, std::uint64_t xmin, std::uint64_t catalog_xmin);
    // Lowest non-zero xmin / catalog_xmin over all consumers (0 = none).
    std::pair<std::uint64_t, std::uint64_t> min_hot_standby_feedback() const;

    std::vector<ConsumerInfo> list() const;
    std::size_t size() const;
    // What the consumers of a slot that is not persisted (START_REPLICATION
    // SLOT without CREATE_REPLICATION_SLOT) last flushed, for
    // READ_REPLICATION_SLOT. At most kMaxRememberedSlots names are kept; a
    // new one replaces a name no connected consumer uses.
    std::optional<Lsn> slot_flush_lsn(const std::string& slot) const;
    static constexpr std::size_t kMaxRememberedSlots = 64;

    // Wakes every registered consumer (commit_lsn advanced / state changed).
    void notify_all();

  private:
    struct Entry {
        ConsumerInfo info;
        int notify_fd = -1;
    };
    std::pair<std::uint64_t, std::uint64_t> min_locked() const;

    mutable std::mutex mutex_;
    std::uint64_t next_id_ = 1;
    std::map<std::uint64_t, Entry> entries_;
    std::map<std::string, Lsn> slots_;
};

}  // namespace wp::sk
