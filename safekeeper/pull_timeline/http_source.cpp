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

std::unique_ptr<httplib::Client> make_client(const HttpAddress& address,
                                             std::chrono::seconds timeout,
                                             const ClientCredentials& credentials) {
    auto client = std::make_unique<httplib::Client>(address.url());
    if (address.https) {
        if (!credentials.sslrootcert.empty()) client->set_ca_cert_path(credentials.sslrootcert.c_str());
        client->enable_server_certificate_verification(!credentials.sslrootcert.empty());
    }
    if (!credentials.empty()) client->set_basic_auth(credentials.user, credentials.password);
    client->set_connection_timeout(timeout.count(), 0);
    client->set_read_timeout(timeout.count(), 0);
    client->set_write_timeout(timeout.count(), 0);
    client->set_keep_alive(true);
    return client;
}

}  // namespace

std::string HttpAddress::url() const {
    const bool ipv6 = host.find(':') != std::string::npos;
    return std::string(https ? "https://" : "http://") + (ipv6 ? "[" + host + "]" : host) + ":" +
           std::to_string(port);
}

Result<HttpAddress> parse_http_address(const std::string& address) {
    std::string rest = address;
    HttpAddress parsed;
    if (rest.compare(0, 7, "http://") == 0) {
        rest = rest.substr(7);
    } else if (rest.compare(0, 8, "https://") == 0) {
        rest = rest.substr(8);
        parsed.https = true;
    } else if (rest.find("://") != std::string::npos) {
        return Status::invalid("'" + address + "': only http:// and https:// addresses are supported");
    }
    while (!rest.empty() && rest.back() == '/') rest.pop_back();
    auto hp = parse_host_port(rest);
    if (!hp || hp->second == 0)
        return Status::invalid("'" + address + "' is not an HTTP address (http[s]://HOST:PORT)");
    parsed.host = hp->first;
    parsed.port = hp->second;
    return parsed;
}

HttpSnapshotSource::HttpSnapshotSource(std::string address, std::unique_ptr<httplib::Client> client)
    : address_(std::move(address)), client_(std::move(client)) {}

HttpSnapshotSource::~HttpSnapshotSource() = default;

Result<std::unique_ptr<HttpSnapshotSource>> HttpSnapshotSource::create(
    const std::string& address, std::chrono::seconds timeout,
    const ClientCredentials& credentials) {
    auto parsed = parse_http_address(address);
    if (!parsed) return parsed.status();
    return std::unique_ptr<HttpSnapshotSource>(
        new HttpSnapshotSource(parsed->url(), make_client(*parsed, timeout, credentials)));
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
    auto parsed = parse_http_address(destination);
    if (!parsed) {
        r.error = parsed.status().message();
        return r;
    }
    auto client = make_client(*parsed, timeout, credentials);
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
