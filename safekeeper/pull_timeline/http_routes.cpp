#include "pull_timeline/http_routes.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "http/httplib_abi.h"
#include "pull_timeline/http_source.h"
#include "pull_timeline/pull.h"
#include "pull_timeline/snapshot.h"

namespace wp::sk {
namespace {

void json_error(httplib::Response& res, int status, const std::string& msg) {
    res.status = status;
    res.set_content(nlohmann::json{{"error", msg}}.dump(), "application/json");
}

// Ids from the route's two capture groups; false (400 sent) if malformed.
bool route_ids(const httplib::Request& req, httplib::Response& res, Id128& tenant,
               Id128& timeline) {
    auto t = req.matches.size() >= 3 ? parse_id(req.matches[1].str())
                                     : Result<Id128>(Status::invalid(""));
    auto l = req.matches.size() >= 3 ? parse_id(req.matches[2].str())
                                     : Result<Id128>(Status::invalid(""));
    if (!t || !l) {
        json_error(res, 400, "ids must be 32 hex digits");
        return false;
    }
    tenant = *t;
    timeline = *l;
    return true;
}

constexpr const char kBase[] = R"(/v1/tenant/([0-9a-fA-F]+)/timeline/([0-9a-fA-F]+))";

}  // namespace

void register_pull_timeline_routes(httplib::Server& server, TimelineRegistry& registry,
                                   NodeId node_id, const std::atomic<bool>& stopping,
                                   const ClientCredentials& peer_credentials) {
    server.Get(std::string(kBase) + "/snapshot", [&registry, node_id](const httplib::Request& req,
                                                                      httplib::Response& res) {
        Id128 tenant, timeline;
        if (!route_ids(req, res, tenant, timeline)) return;
        auto tl = registry.find(tenant, timeline);
        if (!tl) return json_error(res, 404, "timeline not found");
        auto snap = take_snapshot(*tl, node_id);
        if (!snap) return json_error(res, 409, snap.status().message());
        spdlog::info(
            "timeline {}: snapshot for pull_timeline by {}: flush_lsn {}, "
            "{} segments",
            tl->name(), req.remote_addr, format_lsn(snap->flush_lsn), snap->segments.size());
        res.set_content(snapshot_to_json(*snap), "application/json");
    });

    server.Get(std::string(kBase) + "/wal", [&registry](const httplib::Request& req,
                                                        httplib::Response& res) {
        Id128 tenant, timeline;
        if (!route_ids(req, res, tenant, timeline)) return;
        auto lsn_param = [&](const char* key) -> std::optional<Lsn> {
            if (!req.has_param(key)) return std::nullopt;
            return parse_lsn(req.get_param_value(key));
        };
        const auto start = lsn_param("start_lsn"), end = lsn_param("end_lsn"),
                   flush = lsn_param("flush_lsn");
        Term term = 0;
        bool term_ok = req.has_param("wal_term");
        if (term_ok) {
            const std::string t = req.get_param_value("wal_term");
            char* e = nullptr;
            term = std::strtoull(t.c_str(), &e, 10);
            term_ok = !t.empty() && *e == '\0';
        }
        if (!start || !end || !flush || !term_ok)
            return json_error(res, 400,
                              "parameters start_lsn, end_lsn, flush_lsn (X/X) and wal_term "
                              "(a number) are required");
        auto tl = registry.find(tenant, timeline);
        if (!tl) return json_error(res, 404, "timeline not found");
        std::string body;
        const SnapshotWalRead r = read_snapshot_wal(*tl, *flush, term, *start, *end, body);
        if (r.stale) {
            spdlog::warn("timeline {}: pull_timeline by {}: {}", tl->name(), req.remote_addr,
                         r.status.message());
            return json_error(res, 409, r.status.message());
        }
        if (r.status.kind() == StatusKind::kInvalidInput)
            return json_error(res, 400, r.status.message());
        if (r.status.kind() == StatusKind::kNotFound)
            return json_error(res, 410, r.status.message());
        if (!r.status) return json_error(res, 500, r.status.message());
        res.set_content(std::move(body), "application/octet-stream");
    });

    server.Post(std::string(kBase) + "/pull_timeline", [&registry, &stopping, &peer_credentials](
                                                           const httplib::Request& req,
                                                           httplib::Response& res) {
        Id128 tenant, timeline;
        if (!route_ids(req, res, tenant, timeline)) return;
        const nlohmann::json j = nlohmann::json::parse(req.body, nullptr, false);
        if (j.is_discarded() || !j.is_object() || !j.contains("source") || !j["source"].is_string())
            return json_error(res, 400,
                              "body must be a JSON object with \"source\": the source "
                              "safekeeper's HTTP address (http://HOST:PORT)");
        PullOptions options;
        options.cancel = &stopping;
        std::uint64_t timeout = 30;
        if (j.contains("max_bytes_per_second")) {
            if (!j["max_bytes_per_second"].is_number_unsigned())
                return json_error(res, 400, "max_bytes_per_second must be a non-negative integer");
            options.max_bytes_per_second = j["max_bytes_per_second"].get<std::uint64_t>();
        }
        if (j.contains("timeout_seconds")) {
            if (!j["timeout_seconds"].is_number_unsigned() ||
                j["timeout_seconds"].get<std::uint64_t>() == 0)
                return json_error(res, 400, "timeout_seconds must be a positive integer");
            timeout = j["timeout_seconds"].get<std::uint64_t>();
        }
        const std::string address = j["source"].get<std::string>();
        auto source = HttpSnapshotSource::create(address, std::chrono::seconds(timeout),
                                                 peer_credentials);
        if (!source) return json_error(res, 400, "source: " + source.status().message());
        spdlog::info("pull {}/{} from {}: requested by {}", format_id(tenant), format_id(timeline),
                     (*source)->describe(), req.remote_addr);
        const PullOutcome out = pull_timeline(registry, tenant, timeline, **source, options);
        switch (out.failure) {
            case PullFailure::kNone:
                break;
            case PullFailure::kConflict:
                return json_error(res, 409, out.status.message());
            case PullFailure::kSource:
                return json_error(
                    res, 502,
                    "pull from " + (*source)->describe() + " failed: " + out.status.message());
            case PullFailure::kLocal:
                return json_error(res, 500, out.status.message());
        }
        res.set_content(nlohmann::json{{"tenant_id", format_id(tenant)},
                                       {"timeline_id", format_id(timeline)},
                                       {"source", (*source)->describe()},
                                       {"source_node_id", out.snapshot.source_node},
                                       {"flush_lsn", format_lsn(out.snapshot.flush_lsn)},
                                       {"commit_lsn", format_lsn(out.commit_lsn)},
                                       {"term", out.term},
                                       {"segments", out.snapshot.segments.size()},
                                       {"wal_bytes", out.wal_bytes},
                                       {"seconds", out.seconds}}
                            .dump(),
                        "application/json");
    });
}

}  // namespace wp::sk
