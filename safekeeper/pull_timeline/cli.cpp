#include "pull_timeline/cli.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "pull_timeline/http_source.h"
#include "walproposer/timeline_key.h"

namespace wp::sk {

int run_pull_timeline_command(int argc, char** argv) {
    CLI::App app{
        "Copies a timeline from a healthy safekeeper (--from) to a new, empty one (--to) while\n"
        "the cluster keeps committing. The destination downloads a consistent snapshot (control\n"
        "state and WAL up to the source's flush LSN), verifies it, and installs it atomically;\n"
        "then add it to the primary's walproposer.safekeepers. See docs/safekeeper.md.",
        "safekeeper pull-timeline"};
    std::string from, to, tenant, timeline;
    std::uint64_t max_rate = 0, timeout = 3600;
    bool json = false;
    std::string user, password_file, sslrootcert;
    app.add_option("--from", from,
                   "Source safekeeper's HTTP address, as the destination reaches it "
                   "(http[s]://HOST:PORT)")
        ->required();
    app.add_option("--to", to, "Destination safekeeper's HTTP address (http[s]://HOST:PORT)")
        ->required();
    app.add_option("--tenant", tenant, "Tenant id (32 hex digits)")->required();
    app.add_option("--timeline", timeline, "Timeline id (32 hex digits)")->required();
    app.add_option("--max-rate", max_rate,
                   "Limit the WAL download to this many bytes per second (0: no limit)")
        ->capture_default_str();
    app.add_option("--timeout", timeout,
                   "Give up waiting for the destination after this many seconds")
        ->capture_default_str()
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{7 * 24 * 3600}));
    app.add_option("--user", user,
                   "Role to authenticate as to the destination (needs admin there); the password "
                   "comes from --password-file or the SAFEKEEPER_PASSWORD environment variable");
    app.add_option("--password-file", password_file,
                   "File whose first line is the password of --user");
    app.add_option("--sslrootcert", sslrootcert,
                   "CA certificate(s) an https:// destination's certificate must chain to "
                   "(checked with its host name)");
    app.add_flag("--json", json, "Print the destination's JSON answer instead of a sentence");
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return 2;
    }
    auto tenant_id = parse_id(tenant);
    auto timeline_id = parse_id(timeline);
    if (!tenant_id || !timeline_id) {
        std::fprintf(stderr,
                     "safekeeper pull-timeline: --tenant and --timeline must be 32 hex digits\n");
        return 2;
    }
    for (const std::string* a : {&from, &to}) {
        auto hp = parse_http_address(*a);
        if (!hp) {
            std::fprintf(stderr, "safekeeper pull-timeline: %s\n", hp.status().message().c_str());
            return 2;
        }
    }
    ClientCredentials credentials;
    credentials.sslrootcert = sslrootcert;
    if (!user.empty()) {
        credentials.user = user;
        if (!password_file.empty()) {
            auto password = read_password_file(password_file);
            if (!password) {
                std::fprintf(stderr, "safekeeper pull-timeline: %s\n",
                             password.status().message().c_str());
                return 2;
            }
            credentials.password = *password;
        } else if (const char* env = std::getenv("SAFEKEEPER_PASSWORD")) {
            credentials.password = env;
        } else {
            std::fprintf(stderr,
                         "safekeeper pull-timeline: --user needs --password-file or "
                         "SAFEKEEPER_PASSWORD\n");
            return 2;
        }
    }
    const PullRequestResult r = request_pull(to, from, *tenant_id, *timeline_id, max_rate,
                                             std::chrono::seconds(timeout), credentials);
    if (!r.error.empty()) {
        std::fprintf(stderr, "safekeeper pull-timeline: %s\n", r.error.c_str());
        return 1;
    }
    if (json) {
        std::printf("%s\n", r.body.c_str());
        return 0;
    }
    const nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        std::printf("%s\n", r.body.c_str());
        return 0;
    }
    std::printf(
        "pulled timeline %s/%s from %s into %s: flush_lsn %s, commit_lsn %s, term %s, %s WAL "
        "bytes in %s segments, %.3f s\n",
        format_id(*tenant_id).c_str(), format_id(*timeline_id).c_str(),
        j.value("source", from).c_str(), to.c_str(), j.value("flush_lsn", "?").c_str(),
        j.value("commit_lsn", "?").c_str(), j.value("term", nlohmann::json(0)).dump().c_str(),
        j.value("wal_bytes", nlohmann::json(0)).dump().c_str(),
        j.value("segments", nlohmann::json(0)).dump().c_str(), j.value("seconds", 0.0));
    return 0;
}

}  // namespace wp::sk
