#include "wire/connection.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <sstream>

#include "receive_wal/push_handler.h"
#include "send_wal/replication_commands.h"
#include "wire/authentication.h"

namespace wp::sk {
namespace {

std::string trim_query(std::string q) {
    while (!q.empty() && (std::isspace(static_cast<unsigned char>(q.back())) || q.back() == ';' || q.back() == '\0'))
        q.pop_back();
    std::size_t i = 0;
    while (i < q.size() && std::isspace(static_cast<unsigned char>(q[i]))) ++i;
    return q.substr(i);
}

std::string upper(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return s;
}

}  // namespace

std::optional<bool> parse_bool_option(const std::string& text) {
    const std::string v = upper(text);
    if (v == "TRUE" || v == "ON" || v == "YES" || v == "1") return true;
    if (v == "FALSE" || v == "OFF" || v == "NO" || v == "0") return false;
    return std::nullopt;
}

std::optional<std::map<std::string, std::string>> parse_startup_options(const std::string& options) {
    std::map<std::string, std::string> out;
    std::istringstream in(options);
    std::string tok;
    while (in >> tok) {
        std::string kv;
        if (tok == "-c") {
            if (!(in >> kv)) return std::nullopt;
        } else if (tok.rfind("-c", 0) == 0) {
            kv = tok.substr(2);
        } else if (tok.rfind("--", 0) == 0) {
            kv = tok.substr(2);
        } else {
            return std::nullopt;
        }
        auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0) return std::nullopt;
        std::string key = kv.substr(0, eq);
        std::replace(key.begin(), key.end(), '-', '_');
        out[key] = kv.substr(eq + 1);
    }
    return out;
}

void serve_connection(PgConnection& conn, const ConnectionContext& ctx) {
    auto startup = conn.read_startup();
    if (!startup) {
        if (startup.status().kind() == StatusKind::kInvalidInput) {
            conn.send_error(sqlstate::kProtocolViolation, startup.status().message(), "FATAL");
            (void)conn.flush();
            spdlog::warn("connection from {} rejected: {}", conn.peer(), startup.status().message());
        }
        return;
    }
    if (ctx.tls_required && !conn.tls()) {
        conn.send_error(sqlstate::kInvalidAuthorization,
                        "this safekeeper accepts only TLS connections (use sslmode=require or "
                        "stronger)",
                        "FATAL");
        (void)conn.flush();
        spdlog::warn("connection from {} refused: it did not ask for TLS", conn.peer());
        return;
    }
    std::map<std::string, std::string> settings;
    if (auto it = startup->params.find("options"); it != startup->params.end()) {
        auto parsed = parse_startup_options(it->second);
        if (!parsed) {
            conn.send_error(sqlstate::kInvalidParameterValue, "cannot parse startup options: " + it->second, "FATAL");
            (void)conn.flush();
            return;
        }
        settings = std::move(*parsed);
    }
    for (const char* key : {"tenant_id", "timeline_id", "create_timeline"})
        if (auto it = startup->params.find(key); it != startup->params.end()) settings[key] = it->second;

    std::optional<Id128> tenant, timeline;
    if (auto it = settings.find("tenant_id"); it != settings.end()) {
        auto parsed = parse_id(it->second);
        if (!parsed) {
            conn.send_error(sqlstate::kInvalidParameterValue, "tenant_id " + parsed.message(),
                            "FATAL");
            (void)conn.flush();
            return;
        }
        tenant = *parsed;
    }
    if (auto it = settings.find("timeline_id"); it != settings.end()) {
        auto parsed = parse_id(it->second);
        if (!parsed) {
            conn.send_error(sqlstate::kInvalidParameterValue, "timeline_id " + parsed.message(),
                            "FATAL");
            (void)conn.flush();
            return;
        }
        timeline = *parsed;
    }
    bool create_timeline = true;
    if (auto it = settings.find("create_timeline"); it != settings.end()) {
        auto value = parse_bool_option(it->second);
        if (!value) {
            conn.send_error(sqlstate::kInvalidParameterValue,
                            "invalid value for create_timeline: \"" + it->second +
                                "\" (expected true or false)",
                            "FATAL");
            (void)conn.flush();
            return;
        }
        create_timeline = *value;
    }

    std::string user;
    if (auto it = startup->params.find("user"); it != startup->params.end()) user = it->second;
    auto principal = authenticate_pg_client(conn, *ctx.authenticator, user);
    if (!principal) return;
    if (tenant && !principal->may_touch(*tenant)) {
        const std::string message = principal->describe() + " may not access tenant " +
                                    format_id(*tenant);
        conn.send_error(sqlstate::kInsufficientPrivilege, message, "FATAL");
        (void)conn.flush();
        spdlog::warn("connection from {} refused: {}", conn.peer(), message);
        return;
    }
    conn.send_auth_ok();
    conn.send_parameter_status("server_version", "15.0 (safekeeper)");
    conn.send_parameter_status("integer_datetimes", "on");
    conn.send_parameter_status("server_encoding", "UTF8");
    conn.send_parameter_status("client_encoding", "UTF8");
    conn.send_parameter_status("DateStyle", "ISO, MDY");
    conn.send_backend_key_data(static_cast<std::uint32_t>(ctx.conn_id), 0);
    conn.send_ready_for_query();
    if (!conn.flush()) return;

    for (;;) {
        auto msg = conn.read_message();
        if (!msg) {
            if (msg.status().kind() == StatusKind::kInvalidInput) {
                conn.send_error(sqlstate::kProtocolViolation, msg.status().message(), "FATAL");
                (void)conn.flush();
                spdlog::warn("connection from {}: {}", conn.peer(), msg.status().message());
            }
            return;
        }
        if (msg->type == 'X') return;
        if (msg->type != 'Q') {
            conn.send_error(sqlstate::kProtocolViolation,
                            std::string("unsupported frontend message type '") + msg->type + "'", "FATAL");
            (void)conn.flush();
            return;
        }
        const std::string query = trim_query(msg->payload);
        const std::string cmd = upper(query);
        if (query.empty()) {
            conn.send_empty_query_response();
        } else if (cmd == "START_WAL_PUSH") {
            if (!principal->may(kPermPush)) {
                conn.send_error(sqlstate::kInsufficientPrivilege,
                                "permission denied: " + principal->describe() +
                                    " may not push WAL (needs the push permission)");
                spdlog::warn("connection from {}: START_WAL_PUSH refused to {}", conn.peer(),
                             principal->describe());
            } else if (!tenant || !timeline) {
                conn.send_error(sqlstate::kInvalidParameterValue,
                                "START_WAL_PUSH needs tenant_id and timeline_id in the startup options "
                                "(options='-c tenant_id=<hex> -c timeline_id=<hex>')");
            } else {
                PushContext pctx{ctx.registry, ctx.conn_id, *tenant, *timeline, create_timeline};
                if (!run_wal_push(conn, pctx)) return;
            }
        } else if (cmd.rfind("SHOW", 0) != 0 && !principal->may(kPermRead)) {
            conn.send_error(sqlstate::kInsufficientPrivilege,
                            "permission denied: " + principal->describe() +
                                " may not read WAL (needs the read permission)");
        } else {
            ReplicationContext rctx{ctx.registry, ctx.conn_id, tenant, timeline, {}, principal->role};
            if (auto it = startup->params.find("application_name"); it != startup->params.end())
                rctx.application_name = it->second;
            const ReplicationOutcome outcome = handle_replication_query(conn, rctx, query);
            if (outcome == ReplicationOutcome::kClose) return;
            if (outcome == ReplicationOutcome::kNotHandled)
                conn.send_error(sqlstate::kFeatureNotSupported, "command not supported by safekeeper: " + query);
        }
        conn.send_ready_for_query();
        if (!conn.flush()) return;
    }
}

}  // namespace wp::sk
