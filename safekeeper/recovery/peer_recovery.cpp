#include "recovery/peer_recovery.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "pull_timeline/http_source.h"
#include "pull_timeline/pull.h"
#include "pull_timeline/snapshot.h"
#include "storage/control_file.h"
#include "wire/pg_client.h"

namespace wp::sk {

namespace {

std::int64_t unix_ms_now() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string plain_host(std::string host) {
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    return host;
}

bool is_wildcard_host(const std::string& host) {
    return host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]" || host == "*";
}

}  // namespace

struct PeerRecovery::Donor {
    NodeId id = 0;
    std::unique_ptr<HttpSnapshotSource> source;
    PullSnapshot snapshot;
    ControlFileData control;
    Lsn commit_lsn = 0;  // the WAL below it is committed (capped at the snapshot's flush)
};

PeerRecovery::PeerRecovery(TimelineRegistry& registry, PeerRecoveryOptions options)
    : registry_(registry), options_(options) {}

PeerRecovery::~PeerRecovery() { stop(); }

void PeerRecovery::start() {
    stop_ = false;
    thread_ = std::thread([this] {
        while (!stop_) {
            run_once();
            std::unique_lock<std::mutex> lock(sleep_mutex_);
            sleep_cv_.wait_for(lock, options_.interval, [this] { return stop_.load(); });
        }
    });
}

void PeerRecovery::stop() {
    {
        std::lock_guard<std::mutex> g(sleep_mutex_);
        stop_ = true;
    }
    sleep_cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void PeerRecovery::run_once() {
    for (const auto& tl : registry_.list()) {
        if (stop_) return;
        visit(tl);
    }
    // Rebuilds whose pull failed: try again while the timeline is still
    // absent (a proposer may have created it meanwhile: then the ordinary
    // path takes over).
    for (auto it = pending_rebuilds_.begin(); it != pending_rebuilds_.end() && !stop_;) {
        const TimelineKey key = it->first;
        auto [config, status] = it->second;
        it = pending_rebuilds_.erase(it);
        if (registry_.find(key.tenant, key.timeline)) continue;
        auto donor = find_donor(key.tenant, key.timeline, config, status);
        if (!donor) {
            pending_rebuilds_[key] = {config, status};
            continue;
        }
        if (Status s = registry_.begin_pull(key.tenant, key.timeline); !s) continue;
        rebuild_from(key.tenant, key.timeline, *donor, config, status);
    }
}

Result<std::string> PeerRecovery::http_address_of(const Member& member) {
    const std::string key = member.address.to_string();
    if (auto it = http_addresses_.find(key); it != http_addresses_.end()) return it->second;
    PgClient client;
    WP_RETURN_IF_ERROR(client.connect(plain_host(member.address.host), member.address.port,
                                      {{"application_name", "safekeeper peer recovery"}},
                                      options_.timeout, options_.credentials));
    auto id = client.query_value("SHOW safekeeper_node_id");
    if (!id) return id.status();
    if (*id != std::to_string(member.id))
        return Status::invalid("peer " + key + " is safekeeper " + *id +
                               ", but the configuration names safekeeper " +
                               std::to_string(member.id) + " there");
    auto http = client.query_value("SHOW safekeeper_http_address");
    if (!http) return http.status();
    auto parsed = parse_http_address(*http);
    if (!parsed) return Status::invalid("peer " + key + " has no usable HTTP address: " + *http);
    HttpAddress reachable = *parsed;
    if (is_wildcard_host(reachable.host)) reachable.host = plain_host(member.address.host);  // it listens everywhere
    const std::string address = reachable.url();
    http_addresses_[key] = address;
    return address;
}

std::unique_ptr<PeerRecovery::Donor> PeerRecovery::find_donor(const Id128& tenant,
                                                              const Id128& timeline,
                                                              const Configuration& config,
                                                              PeerRecoveryStatus& status) {
    std::unique_ptr<Donor> best;
    std::vector<PeerView> views;
    const auto timeout = std::chrono::duration_cast<std::chrono::seconds>(options_.timeout);
    for (const Member& m : config.all_members()) {
        if (m.id == registry_.node_id() || stop_) continue;
        PeerView view;
        view.id = m.id;
        view.address = m.address.to_string();
        for (const PeerView& old : status.peers)
            if (old.id == m.id) view = old;
        view.address = m.address.to_string();
        auto http = http_address_of(m);
        if (!http) {
            view.error = http.status().message();
            views.push_back(view);
            continue;
        }
        view.http_address = *http;
        auto source = HttpSnapshotSource::create(*http, std::max(timeout, std::chrono::seconds(1)),
                                                 options_.credentials);
        Result<PullSnapshot> snap = source ? (*source)->fetch_snapshot(tenant, timeline)
                                           : Result<PullSnapshot>(source.status());
        Result<ControlFileData> control =
            snap ? verify_snapshot(*snap, tenant, timeline) : Result<ControlFileData>(snap.status());
        if (!control) {
            view.error = control.status().message();
            http_addresses_.erase(view.address);  // find it again next time
            views.push_back(view);
            continue;
        }
        view.error.clear();
        view.seen_unix_ms = unix_ms_now();
        view.flush_lsn = snap->flush_lsn;
        view.commit_lsn = std::min(control->acceptor.commit_lsn, snap->flush_lsn);
        view.timeline_start_lsn = snap->timeline_start_lsn;
        views.push_back(view);
        if (!best || view.commit_lsn > best->commit_lsn) {
            best = std::make_unique<Donor>();
            best->id = m.id;
            best->source = std::move(*source);
            best->snapshot = std::move(*snap);
            best->control = std::move(*control);
            best->commit_lsn = view.commit_lsn;
        }
    }
    status.peers = std::move(views);
    return best;
}

void PeerRecovery::visit(const std::shared_ptr<Timeline>& tl) {
    const TimelineSnapshot snap = tl->snapshot();
    if (snap.state != TimelineState::kActive || snap.configuration.generation == 0) return;
    PeerRecoveryStatus status = tl->peer_recovery();
    // A streaming proposer brings this node up to date itself: no copy then,
    // and the peers are looked at only every tenth pass (for the lag metrics).
    const bool proposer_streams = snap.proposer_connected || snap.disk_full;
    const auto now = std::chrono::steady_clock::now();
    auto& last = last_look_[TimelineKey{tl->tenant_id(), tl->timeline_id()}];
    if (proposer_streams && now - last < 10 * options_.interval) return;
    last = now;
    auto donor = find_donor(tl->tenant_id(), tl->timeline_id(), snap.configuration, status);
    if (proposer_streams || !donor || donor->commit_lsn <= snap.flush_lsn) {
        status.active = false;
        tl->set_peer_recovery(std::move(status));
        return;
    }
    copy_from(tl, *donor, status);
}

void PeerRecovery::copy_from(const std::shared_ptr<Timeline>& tl, Donor& donor,
                             PeerRecoveryStatus& status) {
    const auto started = std::chrono::steady_clock::now();
    const Lsn target = donor.commit_lsn;
    Acceptor::PeerRecoveryPlan plan;
    {
        std::lock_guard<std::mutex> g(tl->mutex());
        Acceptor* acc = tl->acceptor();
        if (!acc || acc->failed() || tl->streaming_locked().holder() != 0 ||
            tl->state() != TimelineState::kActive)
            return;
        auto begun = acc->begin_peer_recovery(donor.control.acceptor.term_history, target,
                                              donor.snapshot.timeline_start_lsn);
        if (!begun) {
            if (acc->failed()) tl->storage_failed_locked(begun.status().message());
            tl->publish_locked();
            status.active = false;
            status.last_error = begun.status().message();
            spdlog::error("timeline {}: peer recovery from safekeeper {}: {}", tl->name(), donor.id,
                          status.last_error);
            tl->set_peer_recovery(std::move(status));
            return;
        }
        plan = *begun;
        tl->publish_locked();
    }
    if (plan.needs_bootstrap) {
        const TimelineSnapshot snap = tl->snapshot();
        spdlog::warn(
            "timeline {}: this safekeeper's WAL ends at {} but safekeeper {} holds WAL only from {} "
            "(the rest was removed) and has committed up to {}: rebuilding the timeline from its "
            "copy",
            tl->name(), format_lsn(snap.flush_lsn), donor.id,
            format_lsn(donor.snapshot.timeline_start_lsn), format_lsn(target));
        // Removed and reserved in one step: no proposer recreates it empty.
        Status s = registry_.remove(tl->tenant_id(), tl->timeline_id(), true, true);
        if (!s) {
            status.last_error = "cannot remove the timeline for its rebuild: " + s.message();
            spdlog::error("timeline {}: {}", tl->name(), status.last_error);
            tl->set_peer_recovery(std::move(status));
            return;
        }
        rebuild_from(tl->tenant_id(), tl->timeline_id(), donor, snap.configuration, status);
        return;
    }
    if (plan.fetch_from >= plan.target) {
        status.active = false;
        tl->set_peer_recovery(std::move(status));
        return;
    }
    spdlog::info("timeline {}: recovering WAL [{}, {}) from safekeeper {} ({})", tl->name(),
                 format_lsn(plan.fetch_from), format_lsn(plan.target), donor.id,
                 donor.source->describe());
    status.active = true;
    status.peer = donor.id;
    status.target_lsn = plan.target;
    status.last_error.clear();
    tl->set_peer_recovery(status);
    Lsn at = plan.fetch_from;
    std::string chunk;
    std::string stopped;
    while (at < plan.target) {
        if (stop_) {
            stopped = "the safekeeper is shutting down";
            break;
        }
        const Lsn end = std::min<Lsn>(plan.target, at + kMaxSnapshotWalChunk);
        chunk.clear();
        Status read = donor.source->read_wal(donor.snapshot, at, end, chunk);
        if (read && chunk.size() != end - at) read = Status::invalid("short WAL chunk from the peer");
        if (!read) {
            stopped = "reading WAL from safekeeper " + std::to_string(donor.id) + ": " + read.message();
            break;
        }
        std::lock_guard<std::mutex> g(tl->mutex());
        Acceptor* acc = tl->acceptor();
        if (!acc || tl->state() != TimelineState::kActive || tl->streaming_locked().holder() != 0 ||
            !acc->peer_recovery_active()) {
            stopped = "a proposer took over";
            break;
        }
        Status s = acc->append_peer_wal(at, reinterpret_cast<const std::uint8_t*>(chunk.data()),
                                        chunk.size());
        if (s) s = acc->flush();
        if (!s) {
            if (acc->failed()) tl->storage_failed_locked(s.message());
            tl->publish_locked();
            stopped = s.message();
            break;
        }
        tl->publish_locked();
        tl->maybe_persist_horizons_locked(false);
        at = end;
        status.recovered_bytes += chunk.size();
        tl->set_peer_recovery(status);
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    status.active = false;
    if (at >= plan.target) {
        {
            std::lock_guard<std::mutex> g(tl->mutex());
            tl->maybe_persist_horizons_locked(true);
        }
        ++status.recoveries;
        spdlog::info("timeline {}: recovered WAL [{}, {}) ({} bytes) from safekeeper {} in {:.1f} s",
                     tl->name(), format_lsn(plan.fetch_from), format_lsn(plan.target),
                     plan.target - plan.fetch_from, donor.id, seconds);
    } else {
        status.last_error = stopped;
        spdlog::warn("timeline {}: peer recovery from safekeeper {} stopped at {}: {}", tl->name(),
                     donor.id, format_lsn(at), stopped);
    }
    tl->set_peer_recovery(std::move(status));
}

void PeerRecovery::rebuild_from(const Id128& tenant, const Id128& timeline, Donor& donor,
                                const Configuration& config, PeerRecoveryStatus status) {
    const TimelineKey key{tenant, timeline};
    PullOptions options;
    options.reserved = true;
    options.cancel = &stop_;
    const PullOutcome outcome = pull_timeline(registry_, tenant, timeline, *donor.source, options);
    if (!outcome.ok()) {
        status.last_error = "rebuild from safekeeper " + std::to_string(donor.id) + " failed: " +
                            outcome.status.message();
        spdlog::error("timeline {}: {} (retried at the next pass)", key.to_string(),
                      status.last_error);
        pending_rebuilds_[key] = {config, status};
        return;
    }
    ++status.bootstraps;
    status.active = false;
    status.peer = donor.id;
    status.target_lsn = outcome.commit_lsn;
    status.recovered_bytes += outcome.wal_bytes;
    status.last_error.clear();
    spdlog::info("timeline {}: rebuilt from safekeeper {}: {} bytes of WAL, commit_lsn {}, in {:.1f} s",
                 key.to_string(), donor.id, outcome.wal_bytes, format_lsn(outcome.commit_lsn),
                 outcome.seconds);
    if (auto tl = registry_.find(tenant, timeline)) tl->set_peer_recovery(std::move(status));
}

}  // namespace wp::sk
