#include "pull_timeline/http_source.h"

#include <nlohmann/json.hpp>

#include "http/httplib_abi.h"
#include "wire/server.h"

namespace wp::sk {
namespace {

std::string timeline_path(const Id128& tenant, const Id128& timeline) {
    return "/v1/tenant/" + format_id(tenant) + "/timeline/" + format_id(timeline);
}

// "GET /path: HTTP 404: <error>" or "GET /path: <connection error>".
std::string describe_failure(const std::string& address, const std::string& what,
                             const httplib::Result& res) {
    std::string msg = address + ": " + what + ": ";
    if (!res) return msg + httplib::to_string(res.error());
    msg += "HTTP " + std::to_string(res->status);
    const nlohmann::json j = nlohmann::json::parse(res->body, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("error") && j["error"].is_string())
        msg += ": " + j["error"].get<std::string>();
    return msg;
}

std::unique_ptr<httplib::Client> make_client(const std::string& host, std::uint16_t port,
                                             std::chrono::seconds timeout,
                                             const ClientCredentials& credentials) {
    auto client = std::make_unique<httplib::Client>(host, port);
    if (!credentials.empty()) client->set_basic_auth(credentials.user, credentials.password);
    client->set_connection_timeout(timeout.count(), 0);
    client->set_read_timeout(timeout.count(), 0);
    client->set_write_timeout(timeout.count(), 0);
    client->set_keep_alive(true);
    return client;
}

}  // namespace

Result<std::pair<std::string, std::uint16_t>> parse_http_address(const std::string& address) {
    std::string rest = address;
    const std::string scheme = "http://";
    if (rest.compare(0, scheme.size(), scheme) == 0)
        rest = rest.substr(scheme.size());
    else if (rest.find("://") != std::string::npos)
        return Status::invalid("'" + address + "': only http:// addresses are supported");
    while (!rest.empty() && rest.back() == '/') rest.pop_back();
    auto hp = parse_host_port(rest);
    if (!hp || hp->second == 0)
        return Status::invalid("'" + address + "' is not an HTTP address (http://HOST:PORT)");
    return hp;
}

HttpSnapshotSource::HttpSnapshotSource(std::string address, std::unique_ptr<httplib::Client> client)
    : address_(std::move(address)), client_(std::move(client)) {}

HttpSnapshotSource::~HttpSnapshotSource() = default;

Result<std::unique_ptr<HttpSnapshotSource>> HttpSnapshotSource::create(
    const std::string& address, std::chrono::seconds timeout,
    const ClientCredentials& credentials) {
    auto hp = parse_http_address(address);
    if (!hp) return hp.status();
    std::string canonical =
        "http://" + (hp->first.find(':') != std::string::npos ? "[" + hp->first + "]" : hp->first) +
        ":" + std::to_string(hp->second);
    return std::unique_ptr<HttpSnapshotSource>(
        new HttpSnapshotSource(std::move(canonical),
                               make_client(hp->first, hp->second, timeout, credentials)));
}

Result<PullSnapshot> HttpSnapshotSource::fetch_snapshot(const Id128& tenant,
                                                        const Id128& timeline) {
    const std::string path = timeline_path(tenant, timeline) + "/snapshot";
    auto res = client_->Get(path.c_str());
    if (!res || res->status != 200)
        return Status::error(describe_failure(address_, "GET " + path, res));
    auto snap = snapshot_from_json(res->body);
    if (!snap) return snap.status().with_context(address_ + ": GET " + path);
    return snap;
}

Status HttpSnapshotSource::read_wal(const PullSnapshot& snapshot, Lsn start, Lsn end,
                                    std::string& out) {
    const std::string path = timeline_path(snapshot.tenant_id, snapshot.timeline_id) +
                             "/wal?start_lsn=" + format_lsn(start) + "&end_lsn=" + format_lsn(end) +
                             "&flush_lsn=" + format_lsn(snapshot.flush_lsn) +
                             "&wal_term=" + std::to_string(snapshot.wal_term);
    auto res = client_->Get(path.c_str());
    if (!res || res->status != 200)
        return Status::error(describe_failure(address_, "GET " + path, res));
    out += res->body;
    return Status();
}

PullRequestResult request_pull(const std::string& destination, const std::string& source,
                               const Id128& tenant, const Id128& timeline,
                               std::uint64_t max_bytes_per_second, std::chrono::seconds timeout,
                               const ClientCredentials& credentials) {
    PullRequestResult r;
    auto hp = parse_http_address(destination);
    if (!hp) {
        r.error = hp.status().message();
        return r;
    }
    auto client = make_client(hp->first, hp->second, timeout, credentials);
    nlohmann::json body = {{"source", source}};
    if (max_bytes_per_second > 0) body["max_bytes_per_second"] = max_bytes_per_second;
    const std::string path = timeline_path(tenant, timeline) + "/pull_timeline";
    auto res = client->Post(path.c_str(), body.dump(), "application/json");
    if (res) {
        r.http_status = res->status;
        r.body = res->body;
    }
    if (!res || res->status != 200) r.error = describe_failure(destination, "POST " + path, res);
    return r;
}

}  // namespace wp::sk
