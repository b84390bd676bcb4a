#include "timeline/timeline.h"


#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <system_error>
#include <thread>

namespace wp::sk {

const char* timeline_state_name(TimelineState s) {
    switch (s) {
        case TimelineState::kActive: return "active";
        case TimelineState::kBroken: return "broken";
        case TimelineState::kDeleted: return "deleted";
    }
    return "unknown";
}

Timeline::Timeline(Id128 tenant, Id128 timeline, NodeId node_id,
                   std::unique_ptr<WalStorage> storage, std::unique_ptr<SlotStore> slots)
    : tenant_(tenant),
      timeline_(timeline),
      name_(TimelineKey{tenant, timeline}.to_string()),
      storage_(std::move(storage)),
      slots_(std::move(slots)) {
    acceptor_ = std::make_unique<Acceptor>(AcceptorConfig{node_id}, storage_.get(), storage_->control().acceptor);
    std::lock_guard<std::mutex> g(mutex_);
    if (!slots_) {
        auto loaded = SlotStore::load(real_file_system(), storage_->directory());
        if (loaded) {
            slots_ = std::move(*loaded);
        } else {
            mark_broken_locked(loaded.status().message());
            return;
        }
    }
    publish_locked();
}

Timeline::Timeline(Id128 tenant, Id128 timeline, std::string error)
    : tenant_(tenant), timeline_(timeline), name_(TimelineKey{tenant, timeline}.to_string()) {
    state_ = TimelineState::kBroken;
    snapshot_.state = TimelineState::kBroken;
    snapshot_.last_error = std::move(error);
}

void Timeline::publish_locked() {
    std::lock_guard<std::mutex> g(snapshot_mutex_);
    snapshot_.state = state_.load();
    if (acceptor_) {
        const AcceptorDurableState& st = acceptor_->state();
        const bool advanced = st.commit_lsn > snapshot_.commit_lsn;
        snapshot_.term = st.term;
        snapshot_.term_history = st.term_history;
        snapshot_.flush_lsn = storage_->flush_lsn();
        snapshot_.write_lsn = storage_->write_lsn();
        snapshot_.commit_lsn = st.commit_lsn;
        snapshot_.truncate_lsn = st.truncate_lsn;
        snapshot_.timeline_start_lsn = storage_->timeline_start_lsn();
        snapshot_.system_id = st.identity.system_id;
        snapshot_.pg_version = st.identity.pg_version;
        snapshot_.pg_timeline = st.identity.pg_timeline;
        snapshot_.wal_segment_size = st.identity.wal_segment_size;
        snapshot_.min_pg_timeline = st.min_pg_timeline;
        snapshot_.configuration = st.configuration;
        if (snapshot_.disk_full && storage_->flush_lsn() > disk_full_flush_ &&
            storage_->control_writes() > disk_full_control_writes_) {
            spdlog::info("timeline {}: disk space available again: WAL acknowledged up to {}",
                         name_, format_lsn(storage_->flush_lsn()));
            snapshot_.disk_full = false;
            snapshot_.disk_full_error.clear();
            snapshot_.disk_full_since_unix_ms = 0;
        }
        if (advanced) {
            commit_cv_.notify_all();
            consumers_.notify_all();
        }
    }
}

TimelineSnapshot Timeline::snapshot() const {
    std::lock_guard<std::mutex> g(snapshot_mutex_);
    return snapshot_;
}

void Timeline::mark_broken_locked(const std::string& error) {
    state_ = TimelineState::kBroken;
    spdlog::error("timeline {}: stopped serving after error: {}", name_, error);
    std::lock_guard<std::mutex> g(snapshot_mutex_);
    snapshot_.state = TimelineState::kBroken;
    snapshot_.last_error = error;
    commit_cv_.notify_all();
    consumers_.notify_all();
}

void Timeline::mark_deleted() {
    state_ = TimelineState::kDeleted;
    std::lock_guard<std::mutex> g(snapshot_mutex_);
    snapshot_.state = TimelineState::kDeleted;
    commit_cv_.notify_all();
    consumers_.notify_all();
}

void Timeline::set_last_error(const std::string& error) {
    std::lock_guard<std::mutex> g(snapshot_mutex_);
    snapshot_.last_error = error;
}

Lsn Timeline::wait_for_commit_beyond(Lsn lsn, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> g(snapshot_mutex_);
    commit_cv_.wait_for(g, timeout, [&] {
        return snapshot_.commit_lsn > lsn || state_.load() != TimelineState::kActive;
    });
    return snapshot_.commit_lsn;
}

Lsn Timeline::published_commit_lsn() const {
    std::lock_guard<std::mutex> g(snapshot_mutex_);
    return snapshot_.commit_lsn;
}

void Timeline::streaming_claimed_locked(const void* holder, std::function<void()> interrupt,
                                        const std::string& peer) {
    if (streamer_ && streamer_ != holder) {
        spdlog::info(
            "timeline {}: proposer {} (term {}) takes over streaming; shutting down the older "
            "connection",
            name_, peer, streaming_.term());
        if (interrupt_streamer_) interrupt_streamer_();
    }
    streamer_ = holder;
    interrupt_streamer_ = std::move(interrupt);
    std::lock_guard<std::mutex> g(snapshot_mutex_);
    snapshot_.proposer_connected = true;
    snapshot_.proposer_peer = peer;
    snapshot_.proposer_term = streaming_.term();
}

void Timeline::streaming_released_locked() {
    if (streaming_.holder() != 0) return;
    streamer_ = nullptr;
    interrupt_streamer_ = nullptr;
    // No proposer streams: an idle timeline keeps no file open.
    if (storage_) (void)storage_->release_files();
    std::lock_guard<std::mutex> g(snapshot_mutex_);
    snapshot_.proposer_connected = false;
}

void Timeline::maybe_persist_horizons_locked(bool force) {
    if (!acceptor_ || state_.load() != TimelineState::kActive) return;
    const auto now = std::chrono::steady_clock::now();
    if (!force && now - last_horizon_persist_ < std::chrono::seconds(1)) return;
    last_horizon_persist_ = now;
    wp::Status s = acceptor_->persist_horizons();
    if (!s.ok()) {
        storage_failed_locked("cannot persist control file: " + s.message());
        return;
    }
    run_retention_locked();
}

// ------------------------------------------------------------------ registry

TimelineRegistry::TimelineRegistry(FileSystem& fs, std::string data_dir, NodeId node_id,
                                   WalStorageOptions options)
    : fs_(fs), data_dir_(std::move(data_dir)), node_id_(node_id), options_(options) {}

std::string TimelineRegistry::timeline_dir(const Id128& tenant, const Id128& timeline) const {
    return join_path(join_path(data_dir_, format_id(tenant)), format_id(timeline));
}

std::string TimelineRegistry::tombstone_path(const Id128& tenant, const Id128& timeline) const {
    return join_path(join_path(data_dir_, format_id(tenant)),
                     format_id(timeline) + kTombstoneSuffix);
}

namespace {

// 24 hex digits, optionally ".partial": a WAL segment file (any segment size).
bool is_wal_segment_name(const std::string& name) {
    std::string base = name;
    const std::string partial = ".partial";
    if (base.size() > partial.size() &&
        base.compare(base.size() - partial.size(), partial.size(), partial) == 0)
        base.resize(base.size() - partial.size());
    return base.size() == 24 && std::all_of(base.begin(), base.end(), [](char c) {
               return std::isxdigit(static_cast<unsigned char>(c)) != 0;
           });
}

}  // namespace

Status TimelineRegistry::load_all() {
    auto tenants = fs_.list_directory(data_dir_);
    if (!tenants) return tenants.status();
    // The tenant directories' entries, before anything below them is trusted
    // (each timeline's files and directories are fsynced by WalStorage::open).
    WP_RETURN_IF_ERROR(fs_.sync_directory(data_dir_).with_context("start-up fsync"));
    struct Work {
        Id128 tenant, timeline;
        std::string name, dir;
    };
    std::vector<Work> work;
    for (const std::string& tenant_name : *tenants) {
        auto tenant = parse_id(tenant_name);
        const std::string tenant_dir = join_path(data_dir_, tenant_name);
        if (!tenant || !fs_.is_directory(tenant_dir)) continue;
        auto entries = fs_.list_directory(tenant_dir);
        if (!entries) {
            spdlog::error("cannot list {}: {}", tenant_dir, entries.status().message());
            continue;
        }
        for (const std::string& entry : *entries) {
            const std::string dir = join_path(tenant_dir, entry);
            if (entry.rfind(".deleted-", 0) == 0) {  // interrupted DELETE
                Status s = fs_.remove_tree(dir);
                if (!s) spdlog::warn("cannot remove {}: {}", dir, s.message());
                continue;
            }
            if (entry.rfind(".pull-", 0) == 0) {  // interrupted pull_timeline
                Status s = fs_.remove_tree(dir);
                if (s) s = fs_.sync_directory(tenant_dir);
                if (!s)
                    spdlog::warn("cannot remove {}: {}", dir, s.message());
                else
                    spdlog::warn("removed {}: a pull_timeline that did not finish", dir);
                continue;
            }
            auto timeline = parse_id(entry);
            if (!timeline || !fs_.is_directory(dir)) continue;
            work.push_back({*tenant, *timeline, tenant_name + "/" + entry, dir});
        }
    }
    // Timelines are independent: several threads open them (each open is
    // mostly waiting for fsyncs and reads), so start-up time does not grow
    // with one disk round trip per timeline.
    std::atomic<std::size_t> next{0};
    auto load_some = [&] {
        for (std::size_t i; (i = next.fetch_add(1)) < work.size();) {
            const Work& w = work[i];
            std::shared_ptr<Timeline> tl = load_timeline(w.tenant, w.timeline, w.name, w.dir);
            if (!tl) continue;
            std::lock_guard<std::mutex> g(mutex_);
            timelines_[{w.tenant, w.timeline}] = std::move(tl);
        }
    };
    const std::size_t threads = std::min<std::size_t>(kLoadThreads, work.size() / 8 + 1);
    std::vector<std::thread> pool;
    for (std::size_t t = 1; t < threads; ++t) {
        try {
            pool.emplace_back(load_some);
        } catch (const std::system_error& e) {
            spdlog::warn("start-up: cannot start a loading thread ({}); loading with fewer",
                         e.what());
            break;
        }
    }
    load_some();
    for (std::thread& t : pool) t.join();
    return Status();
}

std::shared_ptr<Timeline> TimelineRegistry::load_timeline(const Id128& tenant,
                                                          const Id128& timeline,
                                                          const std::string& name,
                                                          const std::string& dir) {
    std::shared_ptr<Timeline> tl;
    auto refuse = [&](const std::string& error) {
        spdlog::error("timeline {}: refusing service: {}", name, error);
        tl = std::make_shared<Timeline>(tenant, timeline, error);
    };
    std::optional<Result<std::unique_ptr<WalStorage>>> storage;
    if (!fs_.exists(join_path(dir, kControlFileName))) {
        auto files = fs_.list_directory(dir);
        if (!files) {
            refuse(files.status().message());
        } else if (std::none_of(files->begin(), files->end(), is_wal_segment_name)) {
            // A crash while the timeline was being created, before its
            // first control file was durable: no WAL segment exists, so
            // nothing was ever acknowledged. Not registered; the first push
            // creates it again.
            spdlog::warn(
                "timeline {}: no control file and no WAL (creation was interrupted); it "
                "will be created again on first use",
                name);
            return nullptr;
        } else {
            // WAL exists, so this timeline voted and acknowledged;
            // recreating it empty would forget its promises.
            refuse(std::string("timeline directory holds WAL segments but no control file ") +
                   kControlFileName +
                   ": its votes and term history are lost, so it must not be recreated; "
                   "restore the control file, or DELETE the timeline");
        }
    } else {
        storage = WalStorage::open(fs_, dir, options_);
        // open() refuses a commit_lsn above the recovered WAL (and the
        // core's Acceptor would start failed on one).
        if (!*storage) refuse(storage->status().message());
    }
    if (!tl) {
        const RecoveryReport& r = (**storage)->recovery_report();
        spdlog::info("timeline {}: loaded, flush_lsn {} (decoded {} records from {} to {}, hint {}; "
                     "read {} bytes; stopped: {})",
                     name, format_lsn(r.flush_lsn), r.records_decoded, format_lsn(r.scan_start),
                     format_lsn(r.decoded_end), format_lsn(r.hint_lsn), r.bytes_read,
                     r.stop_reason);
        for (const std::string& a : r.actions) spdlog::info("timeline {}: recovery: {}", name, a);
        auto slots = SlotStore::load(fs_, dir);
        if (slots) {
            tl = std::make_shared<Timeline>(tenant, timeline, node_id_, std::move(**storage),
                                            std::move(*slots));
            tl->set_max_wal_retention(max_wal_retention_);
            tl->set_wal_keep_size(wal_keep_size_);
        } else {
            refuse(slots.status().message());
        }
    }
    return tl;
}

std::shared_ptr<Timeline> TimelineRegistry::find(const Id128& tenant, const Id128& timeline) {
    std::lock_guard<std::mutex> g(mutex_);
    auto it = timelines_.find({tenant, timeline});
    return it == timelines_.end() ? nullptr : it->second;
}

Result<std::shared_ptr<Timeline>> TimelineRegistry::find_or_create(const Id128& tenant, const Id128& timeline) {
    const TimelineKey key{tenant, timeline};
    {
        std::unique_lock<std::mutex> lock(mutex_);
        for (;;) {
            auto it = timelines_.find(key);
            if (it != timelines_.end()) return it->second;
            if (pulling_.count(key))
                return Status::invalid("timeline " + key.to_string() +
                                       " is being pulled from a peer (pull_timeline); it exists "
                                       "once the pull has finished");
            if (!creating_.count(key)) break;
            creation_done_.wait(lock);  // another connection creates it: take its outcome
        }
        creating_.insert(key);
    }
    // The files are made without the registry lock (their fsyncs would stall
    // every other timeline's lookups); creating_ keeps out a second creation
    // of this one and a pull of it.
    Result<std::shared_ptr<Timeline>> created = create_timeline(tenant, timeline);
    std::lock_guard<std::mutex> g(mutex_);
    creating_.erase(key);
    if (created) timelines_[key] = *created;
    creation_done_.notify_all();
    return created;
}

Result<std::shared_ptr<Timeline>> TimelineRegistry::create_timeline(const Id128& tenant,
                                                                    const Id128& timeline) {
    ControlFileData initial;
    initial.acceptor.identity.tenant_id = tenant;
    initial.acceptor.identity.timeline_id = timeline;
    // A timeline deleted earlier may have voted: start at the term its
    // tombstone recorded, so no vote is ever granted twice in a term.
    auto tombstone = load_tombstone(fs_, tombstone_path(tenant, timeline), timeline);
    if (!tombstone) {
        spdlog::error("timeline {}: refusing to create: {}",
                      TimelineKey{tenant, timeline}.to_string(), tombstone.status().message());
        return tombstone.status().with_context(
            "refusing to create a timeline that was deleted before: its tombstone (the term "
            "it had promised) is unreadable");
    }
    if (*tombstone) {
        initial.acceptor.term = (*tombstone)->term;
        initial.acceptor.min_pg_timeline = (*tombstone)->min_pg_timeline;
        initial.acceptor.configuration = (*tombstone)->configuration;
    }
    const std::string dir = timeline_dir(tenant, timeline);
    // A creation that fails half-way removes what it made, so that a retry
    // (the proposer reconnects) can create the timeline again; it never
    // voted nor acknowledged anything. A directory that was already there is
    // left alone.
    const bool dir_existed = fs_.exists(dir);
    auto abandon = [&](const Status& error) -> Status {
        if (dir_existed) return error;
        Status removed = fs_.remove_tree(dir);
        if (removed.ok()) removed = fs_.sync_directory(parent_directory(dir));
        if (!removed.ok())
            spdlog::warn("timeline {}: cannot remove what a failed creation left in {}: {} "
                         "(the next start-up removes it)",
                         TimelineKey{tenant, timeline}.to_string(), dir, removed.message());
        return error;
    };
    auto storage = WalStorage::create(fs_, dir, initial, options_);
    if (!storage) return abandon(storage.status());
    auto slots = SlotStore::load(fs_, dir);
    if (!slots) {
        storage->reset();  // closes its files before the directory goes
        return abandon(slots.status());
    }
    auto tl = std::make_shared<Timeline>(tenant, timeline, node_id_, std::move(*storage),
                                         std::move(*slots));
    tl->set_max_wal_retention(max_wal_retention_);
    tl->set_wal_keep_size(wal_keep_size_);
    if (*tombstone)
        spdlog::info("timeline {}: created again after a delete, at term {} with fence {} "
                     "(tombstone)",
                     tl->name(), (*tombstone)->term, (*tombstone)->min_pg_timeline);
    else
        spdlog::info("timeline {}: created", tl->name());
    return tl;
}

std::vector<std::shared_ptr<Timeline>> TimelineRegistry::list() {
    std::lock_guard<std::mutex> g(mutex_);
    std::vector<std::shared_ptr<Timeline>> out;
    for (auto& [k, tl] : timelines_) out.push_back(tl);
    return out;
}

PeerRecoveryStatus Timeline::peer_recovery() const {
    std::lock_guard<std::mutex> g(peer_recovery_mutex_);
    return peer_recovery_;
}

void Timeline::set_peer_recovery(PeerRecoveryStatus status) {
    std::lock_guard<std::mutex> g(peer_recovery_mutex_);
    peer_recovery_ = std::move(status);
}

void TimelineRegistry::set_http_address(std::string address) {
    std::lock_guard<std::mutex> g(http_address_mutex_);
    http_address_ = std::move(address);
}

std::string TimelineRegistry::http_address() const {
    std::lock_guard<std::mutex> g(http_address_mutex_);
    return http_address_;
}

Status TimelineRegistry::remove(const Id128& tenant, const Id128& timeline, bool force,
                                bool reserve_for_pull) {
    std::shared_ptr<Timeline> tl;
    {
        std::lock_guard<std::mutex> g(mutex_);
        auto it = timelines_.find({tenant, timeline});
        if (it == timelines_.end()) return Status::error(StatusKind::kNotFound, "timeline not found");
        const TimelineSnapshot snap = it->second->snapshot();
        if (snap.proposer_connected && !force)
            return Status::invalid(
                "timeline " + it->second->name() + " has a connected proposer (" +
                snap.proposer_peer + ", term " + std::to_string(snap.proposer_term) +
                "): deleting it would take this safekeeper out of a running cluster's quorum; "
                "stop the proposer or remove this safekeeper from its list first, or repeat the "
                "request with ?force=true");
        tl = it->second;
        timelines_.erase(it);
        if (reserve_for_pull) pulling_.insert({tenant, timeline});
    }
    tl->mark_deleted();
    // Wait for an in-flight batch to finish before the files go away; no
    // vote can be granted on it after this (it is marked deleted).
    std::lock_guard<std::mutex> g(tl->mutex());
    const std::string dir = timeline_dir(tenant, timeline);
    // The tombstone keeps the highest term the timeline may have promised,
    // durably, before the directory goes; find_or_create() starts there.
    Tombstone keep;
    if (Acceptor* acc = tl->acceptor()) {
        keep.term = std::max(
            {acc->state().term, acc->durable_state().term, tl->storage()->control().acceptor.term});
        keep.min_pg_timeline = std::max({acc->state().min_pg_timeline,
                                         acc->durable_state().min_pg_timeline,
                                         tl->storage()->control().acceptor.min_pg_timeline});
        for (const Configuration* c : {&acc->state().configuration, &acc->durable_state().configuration,
                                       &tl->storage()->control().acceptor.configuration})
            if (c->key() > keep.configuration.key()) keep.configuration = *c;
    } else if (auto control = load_control_file(fs_, dir)) {
        keep.term = control->acceptor.term;
        keep.min_pg_timeline = control->acceptor.min_pg_timeline;
        keep.configuration = control->acceptor.configuration;
    } else {
        spdlog::warn(
            "timeline {}: deleting a timeline whose control file cannot be read ({}); its "
            "tombstone keeps only the terms and fence known from earlier tombstones",
            tl->name(), control.status().message());
    }
    const std::string tomb = tombstone_path(tenant, timeline);
    auto earlier = load_tombstone(fs_, tomb, timeline);
    if (earlier && *earlier) {
        keep.term = std::max(keep.term, (*earlier)->term);
        keep.min_pg_timeline = std::max(keep.min_pg_timeline, (*earlier)->min_pg_timeline);
        if ((*earlier)->configuration.key() > keep.configuration.key())
            keep.configuration = (*earlier)->configuration;
    } else if (!earlier) {
        spdlog::warn("timeline {}: replacing an unreadable tombstone: {}", tl->name(),
                     earlier.status().message());
    }
    WP_RETURN_IF_ERROR(store_tombstone(fs_, tomb, timeline, keep));
    const std::string graveyard =
        join_path(parent_directory(dir), ".deleted-" + format_id(timeline));
    if (fs_.exists(graveyard)) WP_RETURN_IF_ERROR(fs_.remove_tree(graveyard));
    WP_RETURN_IF_ERROR(fs_.rename(dir, graveyard));
    WP_RETURN_IF_ERROR(fs_.sync_directory(parent_directory(dir)));
    WP_RETURN_IF_ERROR(fs_.remove_tree(graveyard));
    spdlog::info("timeline {}: deleted (tombstone at term {}, fence {})", tl->name(), keep.term,
                 keep.min_pg_timeline);
    return Status();
}

Status TimelineRegistry::begin_pull(const Id128& tenant, const Id128& timeline) {
    std::lock_guard<std::mutex> g(mutex_);
    const TimelineKey key{tenant, timeline};
    auto it = timelines_.find(key);
    if (it != timelines_.end()) {
        const TimelineSnapshot s = it->second->snapshot();
        return Status::invalid("timeline " + key.to_string() + " already exists on this safekeeper (" +
                               timeline_state_name(s.state) + ", term " + std::to_string(s.term) +
                               ", flush_lsn " + format_lsn(s.flush_lsn) +
                               "); a pull never replaces a timeline: DELETE it first (its "
                               "tombstone keeps the term it promised) and pull again");
    }
    if (creating_.count(key))
        return Status::invalid("timeline " + key.to_string() +
                               " is being created by a proposer on this safekeeper");
    if (!pulling_.insert(key).second)
        return Status::invalid("a pull of timeline " + key.to_string() +
                               " is already in progress on this safekeeper");
    return Status();
}

void TimelineRegistry::end_pull(const Id128& tenant, const Id128& timeline) {
    std::lock_guard<std::mutex> g(mutex_);
    pulling_.erase({tenant, timeline});
}

std::string TimelineRegistry::pull_staging_dir(const Id128& tenant, const Id128& timeline) const {
    return join_path(join_path(data_dir_, format_id(tenant)), ".pull-" + format_id(timeline));
}

Result<std::optional<Tombstone>> TimelineRegistry::load_tombstone_of(const Id128& tenant,
                                                                     const Id128& timeline) {
    return load_tombstone(fs_, tombstone_path(tenant, timeline), timeline);
}

Result<std::shared_ptr<Timeline>> TimelineRegistry::install_pulled(const Id128& tenant,
                                                                   const Id128& timeline) {
    std::lock_guard<std::mutex> g(mutex_);
    const TimelineKey key{tenant, timeline};
    if (!pulling_.count(key) || timelines_.count(key))
        return Status::invalid("install_pulled of " + key.to_string() + " without begin_pull");
    const std::string dir = timeline_dir(tenant, timeline);
    const std::string tenant_dir = parent_directory(dir);
    if (fs_.exists(dir)) {
        // Not registered, so load_all() skipped it: an interrupted creation
        // with neither a control file nor WAL (nothing was acknowledged).
        // Anything else is left for the operator.
        auto files = fs_.list_directory(dir);
        if (!files) return files.status();
        for (const std::string& f : *files)
            if (f != kFlushHintFileName && !(f.size() > 4 && f.compare(f.size() - 4, 4, ".tmp") == 0))
                return Status::invalid("directory " + dir + " exists and holds " + f +
                                       "; move it away before pulling this timeline");
        WP_RETURN_IF_ERROR(fs_.remove_tree(dir));
        WP_RETURN_IF_ERROR(fs_.sync_directory(tenant_dir));
    }
    WP_RETURN_IF_ERROR(fs_.rename(pull_staging_dir(tenant, timeline), dir));
    WP_RETURN_IF_ERROR(fs_.sync_directory(tenant_dir));
    std::shared_ptr<Timeline> tl;
    auto storage = WalStorage::open(fs_, dir, options_);
    Status result;
    if (storage) {
        tl = std::make_shared<Timeline>(tenant, timeline, node_id_, std::move(*storage));
        // The retention settings apply to a pulled timeline as to any other
        // (without them it would keep no WAL below every member's end).
        tl->set_max_wal_retention(max_wal_retention_);
        tl->set_wal_keep_size(wal_keep_size_);
    } else {
        result = storage.status();
        spdlog::error("timeline {}: refusing service: {}", key.to_string(), result.message());
        tl = std::make_shared<Timeline>(tenant, timeline, result.message());
    }
    timelines_[key] = tl;
    if (!result) return result;
    return tl;
}

void TimelineRegistry::persist_all_horizons() {
    for (auto& tl : list()) {
        std::lock_guard<std::mutex> g(tl->mutex());
        tl->maybe_persist_horizons_locked(true);
        tl->persist_slots(true);
    }
}

}  // namespace wp::sk
