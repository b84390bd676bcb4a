#include "http/http_api.h"

#include "http/http_auth.h"

#include <sys/socket.h>

#include "http/httplib_abi.h"
#include "http/metrics.h"
#include <nlohmann/json.hpp>
#include <regex>
#include <spdlog/spdlog.h>

#include "pull_timeline/http_routes.h"
#include "walproposer/version.h"

namespace wp::sk {
namespace {

// Prometheus label value escaping.
std::string label_escape(const std::string& v) {
    std::string out;
    for (char c : v) {
        if (c == '\\' || c == '"') out.push_back('\\');
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out.push_back(c);
    }
    return out;
}

// WAL consumers (send_wal/replication_commands.h) with their reported positions.
// Persisted replication slots (retention/slot_store.h).
nlohmann::json slots_json(Timeline& tl, const TimelineSnapshot& s) {
    nlohmann::json out = nlohmann::json::array();
    if (!tl.slots()) return out;
    for (const SlotData& slot : tl.slots()->list()) {
        const bool reserved = slot.restart_lsn != kInvalidLsn && !slot.invalidated;
        out.push_back({{"slot_name", slot.name},
                       {"restart_lsn", reserved ? nlohmann::json(format_lsn(slot.restart_lsn))
                                                : nlohmann::json(nullptr)},
                       {"lag_bytes", reserved && s.flush_lsn > slot.restart_lsn
                                         ? s.flush_lsn - slot.restart_lsn
                                         : 0},
                       {"invalidated", slot.invalidated}});
    }
    return out;
}

nlohmann::json consumers_json(Timeline& tl) {
    nlohmann::json out = nlohmann::json::array();
    auto lsn_or_null = [](Lsn l) { return l ? nlohmann::json(format_lsn(l)) : nlohmann::json(nullptr); };
    auto xid_or_null = [](std::uint64_t x) { return x ? nlohmann::json(x) : nlohmann::json(nullptr); };
    for (const ConsumerInfo& c : tl.consumers().list()) {
        out.push_back({{"peer", c.peer},
                       {"application_name", c.application_name},
                       {"role", c.role.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.role)},
                       {"slot_name", c.slot_name.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.slot_name)},
                       {"pg_timeline", c.pg_timeline},
                       {"start_lsn", format_lsn(c.start_lsn)},
                       {"sent_lsn", format_lsn(c.sent_lsn)},
                       {"write_lsn", lsn_or_null(c.write_lsn)},
                       {"flush_lsn", lsn_or_null(c.flush_lsn)},
                       {"apply_lsn", lsn_or_null(c.apply_lsn)},
                       {"hs_xmin", xid_or_null(c.hs_xmin)},
                       {"hs_catalog_xmin", xid_or_null(c.hs_catalog_xmin)},
                       {"last_reply_unix_ms", c.last_reply_unix_ms}});
    }
    return out;
}

nlohmann::json member_set_json(const MemberSet& set) {
    nlohmann::json out = nlohmann::json::array();
    for (const Member& m : set) out.push_back({{"id", m.id}, {"address", m.address.to_string()}});
    return out;
}

// The membership configuration: null when the timeline holds none.
nlohmann::json configuration_json(const Configuration& c) {
    if (c.generation == 0) return nlohmann::json(nullptr);
    return nlohmann::json{
        {"generation", c.generation},
        {"created_term", c.created_term},
        {"members", member_set_json(c.members)},
        {"new_members", c.new_members ? member_set_json(*c.new_members) : nlohmann::json(nullptr)}};
}

nlohmann::json peer_recovery_json(const PeerRecoveryStatus& r) {
    nlohmann::json peers = nlohmann::json::array();
    for (const PeerView& p : r.peers)
        peers.push_back({
            {"id", p.id},
            {"address", p.address},
            {"http_address", p.http_address.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.http_address)},
            {"flush_lsn", format_lsn(p.flush_lsn)},
            {"commit_lsn", format_lsn(p.commit_lsn)},
            {"timeline_start_lsn", format_lsn(p.timeline_start_lsn)},
            {"seen_unix_ms", p.seen_unix_ms},
            {"error", p.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.error)},
        });
    return {
        {"active", r.active},
        {"peer", r.peer},
        {"target_lsn", format_lsn(r.target_lsn)},
        {"recovered_bytes", r.recovered_bytes},
        {"recoveries", r.recoveries},
        {"bootstraps", r.bootstraps},
        {"last_error", r.last_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.last_error)},
        {"peers", peers},
    };
}

nlohmann::json timeline_json(Timeline& tl) {
    const TimelineSnapshot s = tl.snapshot();
    nlohmann::json history = nlohmann::json::array();
    for (const TermLsn& e : s.term_history) history.push_back({{"term", e.term}, {"lsn", format_lsn(e.lsn)}});
    nlohmann::json j = {
        {"tenant_id", format_id(tl.tenant_id())},
        {"timeline_id", format_id(tl.timeline_id())},
        {"state", timeline_state_name(s.state)},
        {"term", s.term},
        {"term_history", history},
        {"flush_lsn", format_lsn(s.flush_lsn)},
        {"write_lsn", format_lsn(s.write_lsn)},
        {"commit_lsn", format_lsn(s.commit_lsn)},
        {"truncate_lsn", format_lsn(s.truncate_lsn)},
        {"timeline_start_lsn", format_lsn(s.timeline_start_lsn)},
        {"wal_segment_size", s.wal_segment_size},
        {"system_id", std::to_string(s.system_id)},
        {"pg_version", s.pg_version},
        {"pg_timeline", s.pg_timeline},
        {"min_pg_timeline", s.min_pg_timeline},
        {"configuration", configuration_json(s.configuration)},
        {"proposer", s.proposer_connected
                         ? nlohmann::json{{"peer", s.proposer_peer}, {"term", s.proposer_term}}
                         : nlohmann::json(nullptr)},
        {"consumers", consumers_json(tl)},
        {"disk_full", s.disk_full},
        {"disk_full_error",
         s.disk_full ? nlohmann::json(s.disk_full_error) : nlohmann::json(nullptr)},
        {"removal_horizon_lsn", format_lsn(s.removal_horizon)},
        {"disk_bytes", tl.counters() ? tl.counters()->disk_bytes.load() : 0},
        {"wal_removed_bytes", tl.counters() ? tl.counters()->wal_removed_bytes.load() : 0},
        {"retention_cutoffs", s.retention_cutoffs},
        {"max_wal_retention", tl.max_wal_retention()},
        {"slots", slots_json(tl, s)},
        {"peer_recovery", peer_recovery_json(tl.peer_recovery())},
        {"last_error",
         s.last_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.last_error)},
    };
    return j;
}

// Tenant and timeline ids from /v1/tenant/<hex>/timeline/<hex>, parsed from
// req.path (one definition of the route for GET and DELETE).
bool timeline_ids(const httplib::Request& req, Id128& tenant, Id128& timeline) {
    static const std::regex kRe(R"(^/v1/tenant/([0-9a-fA-F]+)/timeline/([0-9a-fA-F]+)$)");
    std::smatch m;
    const std::string path = req.path;
    if (!std::regex_match(path, m, kRe)) return false;
    auto t = parse_id(m[1].str());
    auto l = parse_id(m[2].str());
    if (!t || !l) return false;
    tenant = *t;
    timeline = *l;
    return true;
}

void json_error(httplib::Response& res, int status, const std::string& msg) {
    res.status = status;
    res.set_content(nlohmann::json{{"error", msg}}.dump(), "application/json");
}

}  // namespace

HttpApi::HttpApi(TimelineRegistry& registry, PgServer& pg_server, NodeId node_id,
                 Authenticator& authenticator, HttpApiOptions options)
    : registry_(registry),
      pg_server_(pg_server),
      node_id_(node_id),
      authenticator_(authenticator),
      options_(std::move(options)),
      server_(options_.tls != nullptr
                  ? std::unique_ptr<httplib::Server>(new httplib::SSLServer(
                        [tls = options_.tls](SSL_CTX& ctx) { return tls->configure(&ctx); }))
                  : std::make_unique<httplib::Server>()) {
    // httplib's default sets SO_REUSEPORT, which lets a second daemon bind
    // the same HTTP port silently; SO_REUSEADDR alone makes "address in use"
    // an error at start-up, as for the PostgreSQL port.
    server_->set_socket_options([](socket_t sock) {
        int yes = 1;
        ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    // Request bodies are small JSON (pull_timeline); anything larger is
    // refused with 413 before it is read into memory. A client that stalls
    // is dropped after the read timeout; a kept-alive connection serves at
    // most a few requests (the worker pool is small).
    server_->set_payload_max_length(kMaxHttpBodyBytes);
    server_->set_read_timeout(std::chrono::seconds(10));
    server_->set_write_timeout(std::chrono::seconds(10));
    server_->set_keep_alive_max_count(20);
    server_->set_pre_routing_handler([this](const httplib::Request& req,
                                            httplib::Response& res) {
        return authorize(req, res) ? httplib::Server::HandlerResponse::Unhandled
                                   : httplib::Server::HandlerResponse::Handled;
    });
    server_->Get("/v1/status", [this](const httplib::Request&, httplib::Response& res) {
        auto tls = registry_.list();
        std::size_t broken = 0;
        nlohmann::json disk_full = nlohmann::json::array();
        for (auto& tl : tls) {
            if (tl->state() == TimelineState::kBroken) ++broken;
            const TimelineSnapshot snap = tl->snapshot();
            if (snap.disk_full)
                disk_full.push_back({{"timeline", tl->name()}, {"error", snap.disk_full_error}});
        }
        nlohmann::json j = {{"node_id", node_id_},
                            {"version", kVersion},
                            {"timelines", tls.size()},
                            {"broken_timelines", broken},
                            {"disk_full", !disk_full.empty()},
                            {"disk_full_timelines", disk_full},
                            {"active_connections", pg_server_.active_connections()}};
        res.set_content(j.dump(), "application/json");
    });
    server_->Get("/v1/timelines", [this](const httplib::Request& req, httplib::Response& res) {
        // Only the timelines of tenants the caller may read.
        const Principal who = request_principal(req);
        nlohmann::json list = nlohmann::json::array();
        for (auto& tl : registry_.list()) {
            if (!who.may(kPermRead, tl->tenant_id())) continue;
            const TimelineSnapshot s = tl->snapshot();
            list.push_back({{"tenant_id", format_id(tl->tenant_id())},
                            {"timeline_id", format_id(tl->timeline_id())},
                            {"state", timeline_state_name(s.state)},
                            {"term", s.term},
                            {"flush_lsn", format_lsn(s.flush_lsn)},
                            {"commit_lsn", format_lsn(s.commit_lsn)},
                            {"proposer_connected", s.proposer_connected},
                            {"consumers", tl->consumers().size()}});
        }
        res.set_content(nlohmann::json{{"timelines", list}}.dump(), "application/json");
    });
    const char* kTimelinePath = R"(/v1/tenant/([0-9a-fA-F]+)/timeline/([0-9a-fA-F]+))";
    server_->Get(kTimelinePath, [this](const httplib::Request& req, httplib::Response& res) {
        Id128 tenant, timeline;
        if (!timeline_ids(req, tenant, timeline)) return json_error(res, 400, "ids must be 32 hex digits");
        auto tl = registry_.find(tenant, timeline);
        if (!tl) return json_error(res, 404, "timeline not found");
        res.set_content(timeline_json(*tl).dump(), "application/json");
    });
    server_->Delete(kTimelinePath, [this](const httplib::Request& req, httplib::Response& res) {
        Id128 tenant, timeline;
        if (!timeline_ids(req, tenant, timeline)) return json_error(res, 400, "ids must be 32 hex digits");
        const bool force = req.has_param("force") && req.get_param_value("force") == "true";
        Status s = registry_.remove(tenant, timeline, force);
        if (!s) spdlog::warn("DELETE {}: {}", req.path, s.message());
        if (s.kind() == StatusKind::kNotFound) return json_error(res, 404, "timeline not found");
        // A proposer is connected and the request was not forced.
        if (s.kind() == StatusKind::kInvalidInput) return json_error(res, 409, s.message());
        if (!s) return json_error(res, 500, s.message());
        res.set_content(nlohmann::json{{"deleted", true}}.dump(), "application/json");
    });
    register_pull_timeline_routes(*server_, registry_, node_id_, stopping_,
                                  options_.peer_credentials);
    server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
        res.set_content(render_metrics(), "text/plain; version=0.0.4");
    });
    server_->set_error_handler([](const httplib::Request&, httplib::Response& res) {
        if (res.body.empty()) res.set_content(nlohmann::json{{"error", "not found"}}.dump(), "application/json");
    });
}

HttpApi::~HttpApi() { stop(); }

Principal HttpApi::request_principal(const httplib::Request& req) {
    if (authenticator_.mode() == AuthMode::kTrust) return trusted_principal();
    auto credentials = parse_basic_authorization(req.get_header_value("Authorization"));
    if (!credentials) return Principal{};  // an open endpoint without credentials: nothing
    auto principal = authenticator_.check_password(credentials->first, credentials->second);
    return principal ? *principal : Principal{};
}

bool HttpApi::authorize(const httplib::Request& req, httplib::Response& res) {
    if (authenticator_.mode() == AuthMode::kTrust) return true;
    const HttpAccessRule rule = http_access_rule(req.method, req.path);
    if (rule.monitoring && options_.open_status) return true;
    auto challenge = [&](const std::string& why) {
        res.set_header("WWW-Authenticate", "Basic realm=\"safekeeper\", charset=\"UTF-8\"");
        json_error(res, 401, why);
        return false;
    };
    const std::string header = req.get_header_value("Authorization");
    if (header.empty()) return challenge("authentication required");
    auto credentials = parse_basic_authorization(header);
    if (!credentials) return challenge(credentials.status().message());
    auto principal = authenticator_.check_password(credentials->first, credentials->second);
    if (!principal) {
        spdlog::warn("HTTP {} {} from {}: authentication failed: {}", req.method, req.path,
                     req.remote_addr, principal.status().message());
        return challenge("password authentication failed for user \"" + credentials->first + "\"");
    }
    if (!principal->may(rule.permission) || (rule.tenant && !principal->may_touch(*rule.tenant))) {
        const std::string need = rule.permission ? describe_permissions(rule.permission) : "any";
        spdlog::warn("HTTP {} {} from {}: refused to {} (needs {})", req.method, req.path,
                     req.remote_addr, principal->describe(), need);
        json_error(res, 403,
                   "permission denied: " + principal->describe() + " needs the " + need +
                       " permission" + (rule.tenant ? " on this tenant" : ""));
        return false;
    }
    return true;
}

Status HttpApi::listen(const std::string& host, std::uint16_t port) {
    if (port == 0) {
        int p = server_->bind_to_any_port(host);
        if (p < 0) return Status::invalid("cannot listen for HTTP on " + host + ":0");
        bound_port_ = static_cast<std::uint16_t>(p);
    } else {
        if (!server_->bind_to_port(host, port))
            return Status::invalid("cannot listen for HTTP on " + host + ":" + std::to_string(port) +
                                   " (address in use or not available)");
        bound_port_ = port;
    }
    return Status();
}

void HttpApi::start() {
    thread_ = std::thread([this] { server_->listen_after_bind(); });
}

void HttpApi::stop() {
    stopping_ = true;  // a running pull_timeline stops at its next chunk
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
}

std::string HttpApi::render_metrics() {
    std::string out;
    auto tls = registry_.list();
    out += "# HELP safekeeper_timelines Number of timelines on this node.\n# TYPE safekeeper_timelines gauge\n";
    out += "safekeeper_timelines " + std::to_string(tls.size()) + "\n";
    out += "# HELP safekeeper_active_connections Open PostgreSQL-protocol connections.\n"
           "# TYPE safekeeper_active_connections gauge\n";
    out += "safekeeper_active_connections " + std::to_string(pg_server_.active_connections()) + "\n";
    out += "# HELP safekeeper_connections_total Accepted PostgreSQL-protocol connections.\n"
           "# TYPE safekeeper_connections_total counter\n";
    out += "safekeeper_connections_total " + std::to_string(pg_server_.total_connections()) + "\n";

    struct Row {
        std::string labels;
        TimelineSnapshot snap;
        StorageCounters* counters;
        PeerRecoveryStatus recovery;
    };
    std::vector<Row> rows;
    for (auto& tl : tls)
        rows.push_back({"tenant_id=\"" + format_id(tl->tenant_id()) + "\",timeline_id=\"" +
                            format_id(tl->timeline_id()) + "\"",
                        tl->snapshot(), tl->counters(), tl->peer_recovery()});
    auto gauge = [&](const char* name, const char* help, const char* type, auto get) {
        out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
        for (auto& r : rows) out += std::string(name) + "{" + r.labels + "} " + std::to_string(get(r)) + "\n";
    };
    gauge("safekeeper_flush_lsn", "End of durable WAL (byte position).", "gauge",
          [](const Row& r) { return r.snap.flush_lsn; });
    gauge("safekeeper_commit_lsn", "Commit LSN known to this acceptor.", "gauge",
          [](const Row& r) { return r.snap.commit_lsn; });
    gauge("safekeeper_truncate_lsn", "Truncate LSN known to this acceptor.", "gauge",
          [](const Row& r) { return r.snap.truncate_lsn; });
    gauge("safekeeper_term", "Highest term promised.", "gauge", [](const Row& r) { return r.snap.term; });
    gauge("safekeeper_pg_timeline", "PostgreSQL timeline of the WAL held (0: none yet).", "gauge",
          [](const Row& r) { return r.snap.pg_timeline; });
    gauge("safekeeper_configuration_generation",
          "Membership configuration generation held (0: none).", "gauge",
          [](const Row& r) { return r.snap.configuration.generation; });
    gauge("safekeeper_min_pg_timeline",
          "Failover fence: lowest PostgreSQL timeline a proposer may be elected on (0: none).",
          "gauge", [](const Row& r) { return r.snap.min_pg_timeline; });
    gauge("safekeeper_timeline_broken", "1 if the timeline refuses service after an error.", "gauge",
          [](const Row& r) { return r.snap.state == TimelineState::kBroken ? 1 : 0; });
    gauge("safekeeper_proposer_connected", "1 while a proposer streams to the timeline.", "gauge",
          [](const Row& r) { return r.snap.proposer_connected ? 1 : 0; });
    gauge("safekeeper_wal_bytes_written_total", "WAL bytes written.", "counter",
          [](const Row& r) { return r.counters ? r.counters->wal_bytes_written.load() : 0; });
    gauge("safekeeper_fsync_total", "fdatasync calls on WAL segments.", "counter",
          [](const Row& r) { return r.counters ? r.counters->fsync_count.load() : 0; });
    gauge("safekeeper_flush_hint_writes_total", "Flushes that ended inside a record (hint written).", "counter",
          [](const Row& r) { return r.counters ? r.counters->flush_hint_writes.load() : 0; });
    gauge("safekeeper_segments_created_total", "WAL segment files created.", "counter",
          [](const Row& r) { return r.counters ? r.counters->segments_created.load() : 0; });
    gauge("safekeeper_segment_reservations_total",
          "Disk block reservations ahead of WAL writes in sparse segments.", "counter",
          [](const Row& r) { return r.counters ? r.counters->segment_reservations.load() : 0; });
    gauge("safekeeper_wal_zero_ahead_bytes_total",
          "Zero bytes written over reserved blocks ahead of small WAL writes.", "counter",
          [](const Row& r) { return r.counters ? r.counters->zero_ahead_bytes.load() : 0; });
    gauge("safekeeper_disk_full", "1 while the timeline acknowledges nothing because its file system is full.",
          "gauge", [](const Row& r) { return r.snap.disk_full ? 1 : 0; });
    gauge("safekeeper_disk_full_events_total", "Times the timeline entered the disk-full state.", "counter",
          [](const Row& r) { return r.snap.disk_full_events; });
    gauge("safekeeper_timeline_disk_bytes", "Bytes of WAL segment files the timeline holds.", "gauge",
          [](const Row& r) { return r.counters ? r.counters->disk_bytes.load() : 0; });
    gauge("safekeeper_removal_horizon_lsn", "WAL below this is no longer needed (byte position; 0: not computed yet).",
          "gauge", [](const Row& r) { return r.snap.removal_horizon; });
    gauge("safekeeper_timeline_start_lsn", "First WAL the timeline holds (byte position).", "gauge",
          [](const Row& r) { return r.snap.timeline_start_lsn; });
    gauge("safekeeper_wal_removed_bytes_total", "WAL bytes removed by retention.", "counter",
          [](const Row& r) { return r.counters ? r.counters->wal_removed_bytes.load() : 0; });
    gauge("safekeeper_retention_cutoffs_total",
          "Slots invalidated and lagging members cut off by --max-wal-retention.", "counter",
          [](const Row& r) { return r.snap.retention_cutoffs; });
    gauge("safekeeper_peer_recovery_active", "1 while the timeline copies committed WAL from a peer.",
          "gauge", [](const Row& r) { return r.recovery.active ? 1 : 0; });
    gauge("safekeeper_peer_recovered_bytes_total", "WAL bytes taken from peer safekeepers.", "counter",
          [](const Row& r) { return r.recovery.recovered_bytes; });
    gauge("safekeeper_peer_recoveries_total", "Peer recoveries that reached their target.", "counter",
          [](const Row& r) { return r.recovery.recoveries; });
    gauge("safekeeper_peer_rebuilds_total",
          "Times the timeline was rebuilt from a peer's copy (its own WAL was too old).", "counter",
          [](const Row& r) { return r.recovery.bootstraps; });
    {
        const char* name = "safekeeper_member_lag_bytes";
        out += std::string("# HELP ") + name +
               " How far a member's end of WAL is behind the highest commit_lsn this node knows "
               "(its own, or a peer's as last seen by peer recovery); members not reached yet are "
               "not listed.\n# TYPE " + name + " gauge\n";
        for (auto& r : rows) {
            if (r.snap.configuration.generation == 0) continue;
            Lsn reference = r.snap.commit_lsn;
            for (const PeerView& p : r.recovery.peers)
                if (p.seen_unix_ms != 0) reference = std::max(reference, p.commit_lsn);
            auto line = [&](NodeId id, Lsn flush) {
                out += std::string(name) + "{" + r.labels + ",member=\"" + std::to_string(id) + "\"} " +
                       std::to_string(reference > flush ? reference - flush : 0) + "\n";
            };
            line(node_id_, r.snap.flush_lsn);
            for (const PeerView& p : r.recovery.peers)
                if (p.seen_unix_ms != 0) line(p.id, p.flush_lsn);
        }
    }
    for (const char* which : {"restart_lsn", "lag_bytes", "invalidated"}) {
        const std::string metric = std::string("safekeeper_slot_") + which;
        out += "# HELP " + metric + " Persisted replication slot: " + which + ".\n# TYPE " + metric +
               " gauge\n";
        for (auto& tl : tls) {
            if (!tl->slots()) continue;
            const Lsn flush = tl->snapshot().flush_lsn;
            for (const SlotData& slot : tl->slots()->list()) {
                const std::uint64_t v =
                    which[0] == 'r'   ? slot.restart_lsn
                    : which[0] == 'i' ? (slot.invalidated ? 1 : 0)
                                      : (slot.restart_lsn && flush > slot.restart_lsn
                                             ? flush - slot.restart_lsn
                                             : 0);
                out += metric + "{tenant_id=\"" + format_id(tl->tenant_id()) +
                       "\",timeline_id=\"" + format_id(tl->timeline_id()) + "\",slot=\"" +
                       label_escape(slot.name) + "\"} " + std::to_string(v) + "\n";
            }
        }
    }
    out += "# HELP safekeeper_consumers WAL consumers streaming the timeline.\n"
           "# TYPE safekeeper_consumers gauge\n";
    for (auto& tl : tls)
        out += "safekeeper_consumers{tenant_id=\"" + format_id(tl->tenant_id()) +
               "\",timeline_id=\"" + format_id(tl->timeline_id()) + "\"} " +
               std::to_string(tl->consumers().size()) + "\n";
    for (const char* which : {"sent", "write", "flush", "apply"}) {
        const std::string metric = std::string("safekeeper_consumer_") + which + "_lsn";
        out += "# HELP " + metric + " WAL consumer's " + which + " position (byte position).\n# TYPE " +
               metric + " gauge\n";
        for (auto& tl : tls)
            for (const ConsumerInfo& c : tl->consumers().list()) {
                const Lsn v = which[0] == 's'   ? c.sent_lsn
                              : which[0] == 'w' ? c.write_lsn
                              : which[0] == 'f' ? c.flush_lsn
                                                : c.apply_lsn;
                out += metric + "{tenant_id=\"" + format_id(tl->tenant_id()) + "\",timeline_id=\"" +
                       format_id(tl->timeline_id()) + "\",consumer=\"" + label_escape(c.peer) +
                       "\",application_name=\"" + label_escape(c.application_name) + "\"} " +
                       std::to_string(v) + "\n";
            }
    }
    out += "# HELP safekeeper_fsync_seconds Duration of WAL fdatasync calls.\n"
           "# TYPE safekeeper_fsync_seconds histogram\n";
    for (auto& r : rows)
        if (r.counters) render_histogram(out, "safekeeper_fsync_seconds", r.labels, r.counters->fsync_seconds);
    return out;
}

}  // namespace wp::sk
