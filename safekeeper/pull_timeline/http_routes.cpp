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
        auto param = [&](const char* key) -> std::optional<std::string> {
            if (!req.has_param(key)) return std::nullopt;
            return req.get_param_value(key);
        };
        auto params = parse_wal_read_params(param("start_lsn"), param("end_lsn"),
                                            param("flush_lsn"), param("wal_term"));
        if (!params) return json_error(res, 400, params.status().message());
        auto tl = registry.find(tenant, timeline);
        if (!tl) return json_error(res, 404, "timeline not found");
        std::string body;
        const SnapshotWalRead r =
            read_snapshot_wal(*tl, params->flush, params->wal_term, params->start, params->end, body);
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
        auto request = parse_pull_request_body(req.body);
        if (!request) return json_error(res, 400, request.status().message());
        PullOptions options;
        options.cancel = &stopping;
        options.max_bytes_per_second = request->max_bytes_per_second;
        auto source = HttpSnapshotSource::create(request->source,
                                                 std::chrono::seconds(request->timeout_seconds),
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
