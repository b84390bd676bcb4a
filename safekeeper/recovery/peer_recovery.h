// Peer recovery (docs/safekeeper.md, "Peer recovery"): a safekeeper that is
// behind its peers takes the committed WAL it lacks from a peer safekeeper
// instead of from the primary, so that neither the primary nor the peers
// have to keep WAL for a member that was down.
//
// One thread looks at every timeline each `interval`. A timeline is
// recovered when it holds a membership configuration (its peers are the
// configuration's other members), no proposer streams to it, and a peer's
// commit_lsn lies above its end of WAL. For each peer the thread:
//  1. finds the peer's HTTP API over its PostgreSQL-protocol port
//     (`SHOW safekeeper_node_id` must name the configured member,
//     `SHOW safekeeper_http_address`), cached per address;
//  2. takes a snapshot of the timeline there (the pull_timeline snapshot
//     endpoint: durable control state, flush LSN, timeline start).
// Of the peers reached, the one with the highest commit_lsn is the donor.
// Under the timeline's lock, Acceptor::begin_peer_recovery() truncates a
// divergent tail and adopts the donor's history; then WAL chunks
// [end of WAL, donor commit_lsn) are read from the donor (each chunk checked
// against the snapshot, snapshot.h), appended with append_peer_wal() and
// flushed (fdatasync), one chunk per lock hold. A proposer that connects in
// the meantime wins: its vote or election ends the recovery (the core refuses
// later chunks), and the thread stops at the next chunk.
//
// When the donor no longer holds what this node lacks (its timeline starts
// above this node's end of WAL: retention removed it, or this node holds no
// WAL), the timeline is rebuilt from the donor's copy: it is removed (its
// tombstone keeps the promised term and fence) and reserved in the same step,
// then pulled (pull_timeline/pull.h). A pull that fails is retried at the
// next pass, from any reachable member of the configuration it had.
//
// Everything a pass does is logged and published in the timeline's
// PeerRecoveryStatus (status API, metrics). Thread-safety: start()/stop()
// from one thread; run_once() must not run concurrently with the thread
// (tests call it without start()).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "auth/client_credentials.h"
#include "timeline/timeline.h"
#include "walproposer/configuration.h"
#include "walproposer/timeline_key.h"

namespace wp::sk {

struct PeerRecoveryOptions {
    std::chrono::milliseconds interval{1000};  // between passes over the timelines
    std::chrono::milliseconds timeout{10000};  // per connection and request to a peer
    ClientCredentials credentials;             // presented to peers (both ports)
};

class PeerRecovery {
public:
    PeerRecovery(TimelineRegistry& registry, PeerRecoveryOptions options);
    ~PeerRecovery();
    PeerRecovery(const PeerRecovery&) = delete;
    PeerRecovery& operator=(const PeerRecovery&) = delete;

    void start();
    // Stops the thread; a copy in progress stops before its next chunk.
    void stop();
    // One pass over every timeline.
    void run_once();

private:
    struct Donor;
    void visit(const std::shared_ptr<Timeline>& tl);
    // Snapshots of the timeline on every other member; the donor is the one
    // with the highest commit_lsn. Fills status.peers.
    std::unique_ptr<Donor> find_donor(const Id128& tenant, const Id128& timeline,
                                      const Configuration& config, PeerRecoveryStatus& status);
    void copy_from(const std::shared_ptr<Timeline>& tl, Donor& donor, PeerRecoveryStatus& status);
    void rebuild_from(const Id128& tenant, const Id128& timeline, Donor& donor,
                      const Configuration& config, PeerRecoveryStatus status);
    Result<std::string> http_address_of(const Member& member);

    TimelineRegistry& registry_;
    PeerRecoveryOptions options_;
    std::map<std::string, std::string> http_addresses_;  // member address -> its HTTP API
    std::map<TimelineKey, std::chrono::steady_clock::time_point> last_look_;
    // Timelines removed for a rebuild whose pull failed: retried each pass.
    std::map<TimelineKey, std::pair<Configuration, PeerRecoveryStatus>> pending_rebuilds_;
    std::atomic<bool> stop_{false};
    std::mutex sleep_mutex_;
    std::condition_variable sleep_cv_;
    std::thread thread_;
};

}  // namespace wp::sk
