// Fuzz target: the text formats read from outside. The first byte picks the
// parser, the rest is its input:
//   0: walproposer.safekeepers (parse_safekeeper_list, a GUC's check hook)
//   1: PostgreSQL timeline history files (parse_pg_timeline_history; the
//      safekeeper receives them in greetings and serves them to standbys)
//   2: replication commands (parse_replication_command, any client's query)
//   3: tenant/timeline ids (parse_id: startup options, HTTP paths)
//   4: member sets "id=host:port,..." (parse_member_set)
//   5: the primary's term history file body (parse_term_history_body; a
//      parsed body must format and parse back to itself)
//   6: the safekeeper's roles file (parse_roles_file)
//   7: SCRAM secrets (parse_scram_secret; a parsed secret must format and
//      parse back to itself)
//   8: an HTTP request's method, path and Authorization header, one per
//      line (http_access_rule, parse_basic_authorization)
//   9: a pull_timeline snapshot (snapshot_from_json: the answer of a peer;
//      a parsed snapshot must print and parse back to itself)
//  10: a pull_timeline request body (parse_pull_request_body)
//  11: the WAL read parameters start_lsn, end_lsn, flush_lsn, wal_term, one
//      per line (parse_wal_read_params)
// Each must return a value or an error for any input, never crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "walproposer/config.h"
#include "walproposer/configuration.h"
#include "walproposer/pg_timeline_history.h"
#include "walproposer/timeline_key.h"
#include "auth/roles.h"
#include "auth/scram.h"
#include "http/http_auth.h"
#include "pull_timeline/http_format.h"
#include "walproposer/term_history.h"
#include "wire/replication_command.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
    switch (data[0] % 12) {
        case 0: {
            auto list = wp::parse_safekeeper_list(text);
            if (list.ok())
                for (const auto& a : *list) (void)a.to_string();
            break;
        }
        case 1:
            (void)wp::parse_pg_timeline_history(text);
            break;
        case 2:
            (void)wp::sk::parse_replication_command(text);
            break;
        case 3:
            (void)wp::parse_id(text);
            break;
        case 4:
            (void)wp::parse_member_set(text);
            break;
        case 5: {
            auto body = wp::parse_term_history_body(text);
            if (body.ok()) {
                auto again = wp::parse_term_history_body(wp::format_term_history_body(*body));
                if (!again.ok() || again->pg_timeline != body->pg_timeline ||
                    again->history.size() != body->history.size())
                    std::abort();
            }
            break;
        }
        case 6:
            (void)wp::sk::parse_roles_file(text, "fuzz");
            break;
        case 7: {
            auto secret = wp::sk::parse_scram_secret(text);
            if (secret.ok()) {
                auto again = wp::sk::parse_scram_secret(wp::sk::format_scram_secret(*secret));
                if (!again.ok() || again->salt != secret->salt ||
                    again->stored_key != secret->stored_key ||
                    again->server_key != secret->server_key ||
                    again->iterations != secret->iterations)
                    std::abort();
            }
            break;
        }
        case 8: {
            const std::size_t first = text.find('\n');
            const std::size_t second = first == std::string::npos ? first : text.find('\n', first + 1);
            const std::string method = text.substr(0, first);
            const std::string path =
                first == std::string::npos ? "" : text.substr(first + 1, second - first - 1);
            const std::string header = second == std::string::npos ? "" : text.substr(second + 1);
            (void)wp::sk::http_access_rule(method, path);
            (void)wp::sk::parse_basic_authorization(header);
            break;
        }
        case 9: {
            auto snapshot = wp::sk::snapshot_from_json(text);
            if (snapshot.ok()) {
                auto again = wp::sk::snapshot_from_json(wp::sk::snapshot_to_json(*snapshot));
                if (!again.ok() || again->flush_lsn != snapshot->flush_lsn ||
                    again->control_file != snapshot->control_file ||
                    again->segments.size() != snapshot->segments.size())
                    std::abort();
            }
            break;
        }
        case 10:
            (void)wp::sk::parse_pull_request_body(text);
            break;
        case 11: {
            std::optional<std::string> fields[4];
            std::size_t at = 0;
            for (auto& field : fields) {
                if (at > text.size()) break;
                const std::size_t eol = text.find('\n', at);
                field = text.substr(at, eol == std::string::npos ? std::string::npos : eol - at);
                at = eol == std::string::npos ? text.size() + 1 : eol + 1;
            }
            (void)wp::sk::parse_wal_read_params(fields[0], fields[1], fields[2], fields[3]);
            break;
        }
    }
    return 0;
}
