// safekeeper: the acceptor daemon of walproposer.
//
//   safekeeper -D DIR --id N [--listen-pg HOST:PORT] [--listen-http HOST:PORT]
//              [--no-peer-recovery] [--peer-recovery-interval-ms N]
//   safekeeper pull-timeline --from URL --to URL --tenant T --timeline L
//                                          (operator command: pull_timeline/cli.h)
//   safekeeper hash-password               (prints a SCRAM secret for a roles file)
//
// Clients authenticate with SCRAM-SHA-256 against --roles-file (auth/roles.h)
// unless --auth trust is given.
// Start-up order: check flags, lock DIR (one daemon per directory), bind both
// ports (so "address in use" fails fast), load every timeline, then serve.
// SIGTERM/SIGINT: stop accepting, close connections after their current
// batch (and fsync), persist commit/truncate LSNs, exit 0. SIGHUP re-reads
// the roles file (a bad file is logged and the old roles stay). Under systemd, READY=1 is sent once the
// daemon serves (Type=notify). Exit codes: 0 ok,
// 1 runtime/start-up error, 2 bad flags (CLI11's convention for parse errors
// is 1xx; we map them to 2).
#include <fcntl.h>
#include <signal.h>
#include <termios.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>

#include "auth/client_credentials.h"
#include "auth/roles.h"

#include "storage/durable_file.h"
#ifdef WP_POWER_LOSS_FS
#include "support/power_loss_fs.h"
#endif
#include "http/http_api.h"
#include "pull_timeline/cli.h"
#include "recovery/peer_recovery.h"
#include "wire/server.h"
#include "wire/tls.h"
#include "retention/horizon.h"
#include "timeline/timeline.h"
#include "walproposer/version.h"

namespace {

int fail_start(const std::string& msg) {
    spdlog::critical("{}", msg);
    return 1;
}

// `safekeeper hash-password`: reads a password (first line of stdin, not
// echoed on a terminal) and prints its SCRAM-SHA-256 secret.
int run_hash_password_command(int argc, char** argv) {
    if (argc > 1) {
        const std::string arg = argv[1];
        std::fprintf(arg == "--help" || arg == "-h" ? stdout : stderr,
                     "Usage: safekeeper hash-password < PASSWORD_FILE\n"
                     "Reads a password (the first line of standard input; typed without echo "
                     "on a terminal)\nand prints its SCRAM-SHA-256 secret, the last field of a "
                     "roles file line.\n");
        return arg == "--help" || arg == "-h" ? 0 : 2;
    }
    const bool tty = ::isatty(STDIN_FILENO);
    termios saved{};
    if (tty) {
        std::fprintf(stderr, "Password: ");
        ::tcgetattr(STDIN_FILENO, &saved);
        termios quiet = saved;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    std::string password;
    std::getline(std::cin, password);
    if (tty) {
        ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        std::fprintf(stderr, "\n");
    }
    if (!password.empty() && password.back() == '\r') password.pop_back();
    if (password.empty()) {
        std::fprintf(stderr, "safekeeper hash-password: empty password\n");
        return 2;
    }
    auto secret = wp::sk::make_scram_secret(password);
    if (!secret) {
        std::fprintf(stderr, "safekeeper hash-password: %s\n", secret.status().message().c_str());
        return 1;
    }
    std::printf("%s\n", wp::sk::format_scram_secret(*secret).c_str());
    return 0;
}

// The log level a --config file sets now (SIGHUP): its `log-level` line,
// nullopt when it has none; an error for a file that does not parse or a
// level that is not one of ours.
wp::Result<std::optional<std::string>> config_file_log_level(const std::string& path) {
    CLI::App reader{"safekeeper configuration"};
    reader.allow_config_extras(true);
    std::string level;
    auto* option = reader.add_option("--log-level", level)->check(
        CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
    reader.set_config("--config", path, "", true);
    try {
        char program[] = "safekeeper";
        char* argv[] = {program, nullptr};
        reader.parse(1, argv);
    } catch (const CLI::Error& e) {
        return wp::Status::invalid(path + ": " + e.what());
    }
    if (option->count() == 0) return std::optional<std::string>();
    return std::optional<std::string>(level);
}

bool is_loopback_host(const std::string& host) {
    return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

// Below this many open files the daemon warns at start-up: every client
// connection holds a socket and a timeline being served holds its files.
constexpr rlim_t kLowOpenFileLimit = 4096;

// Raises the soft limit on open files to the hard limit (an unlimited hard
// limit: to the kernel's fs.nr_open) and logs the result, with a warning
// when it stays low.
void raise_open_file_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        spdlog::warn("cannot read the open-file limit: {}", std::strerror(errno));
        return;
    }
    const rlim_t before = limit.rlim_cur;
    rlim_t target = limit.rlim_max;
    if (target == RLIM_INFINITY) {
        target = 1048576;
        if (FILE* f = std::fopen("/proc/sys/fs/nr_open", "r")) {
            unsigned long long nr_open = 0;
            if (std::fscanf(f, "%llu", &nr_open) == 1 && nr_open > 0) target = static_cast<rlim_t>(nr_open);
            std::fclose(f);
        }
    }
    if (limit.rlim_cur < target) {
        rlimit raised = limit;
        raised.rlim_cur = target;
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0)
            limit.rlim_cur = target;
        else
            spdlog::warn("cannot raise the open-file limit from {} to {}: {}",
                         static_cast<unsigned long long>(before),
                         static_cast<unsigned long long>(target), std::strerror(errno));
    }
    const auto current = static_cast<unsigned long long>(limit.rlim_cur);
    if (limit.rlim_cur < kLowOpenFileLimit)
        spdlog::warn(
            "open-file limit is {} (hard limit {}): each client connection and each timeline "
            "being served holds files open, so connections and timelines will be refused near "
            "it; raise the hard limit to at least {} (LimitNOFILE= in the systemd unit, or "
            "ulimit -Hn before starting)",
            current, static_cast<unsigned long long>(limit.rlim_max),
            static_cast<unsigned long long>(kLowOpenFileLimit));
    else if (current != before)
        spdlog::info("open-file limit raised from {} to {}", static_cast<unsigned long long>(before),
                     current);
    else
        spdlog::info("open-file limit {}", current);
}

}  // namespace

int main(int argc, char** argv) {
    using namespace wp;
    using namespace wp::sk;
    if (argc >= 2 && std::string(argv[1]) == "pull-timeline")
        return run_pull_timeline_command(argc - 1, argv + 1);
    if (argc >= 2 && std::string(argv[1]) == "hash-password")
        return run_hash_password_command(argc - 1, argv + 1);
    CLI::App app{"safekeeper: quorum-durable WAL acceptor for walproposer", "safekeeper"};
    app.footer(
        "Operator command (see safekeeper pull-timeline --help):\n"
        "  safekeeper pull-timeline --from URL --to URL --tenant T --timeline L\n"
        "      copy a timeline from a healthy safekeeper to a new one\n"
        "  safekeeper hash-password < FILE\n"
        "      print the SCRAM-SHA-256 secret of a password, for --roles-file");
    std::string data_dir;
    std::uint64_t node_id = 0;
    std::string listen_pg = "127.0.0.1:5454";
    std::string listen_http = "127.0.0.1:7676";
    std::string log_level = "info";
    bool zero_fill = false;
    std::string max_wal_retention = "off";
    std::string wal_keep_size = "128MB";
    std::uint32_t peer_recovery_interval_ms = 1000;
    std::size_t max_connections = 1000;
    ConnectionLimits limits;
    bool no_peer_recovery = false;
    std::string auth_method = "scram";
    std::string roles_file;
    bool http_open_status = false;
    std::string peer_user, peer_password_file;
    std::string tls_cert, tls_key, peer_sslrootcert;
    bool require_tls = false;
    app.add_option("-D,--datadir", data_dir, "Data directory (created if missing)")->required();
    app.add_option("--id", node_id, "Node id of this safekeeper (a positive integer)")->required()
        ->check(CLI::Range(std::uint64_t{1}, std::numeric_limits<std::uint64_t>::max()));
    app.add_option("--listen-pg", listen_pg, "PostgreSQL-protocol listen address HOST:PORT")->capture_default_str();
    app.add_option("--listen-http", listen_http, "HTTP API listen address HOST:PORT")->capture_default_str();
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error")->capture_default_str()
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
    app.add_flag("--zero-fill-segments", zero_fill,
                 "Create WAL segments by writing zeros instead of posix_fallocate");
    app.add_option("--max-wal-retention", max_wal_retention,
                   "Most WAL (bytes; units kB, MB, GB, TB) a timeline keeps for lagging members "
                   "and replication slots; beyond it they are cut off. off: no cap")
        ->capture_default_str();
    app.add_option("--wal-keep-size", wal_keep_size,
                   "Least WAL (bytes; units kB, MB, GB, TB) a timeline keeps below its end, so "
                   "standbys from recent base backups find their WAL; the cap wins. 0: none")
        ->capture_default_str();
    app.add_option("--peer-recovery-interval-ms", peer_recovery_interval_ms,
                   "How often a timeline that is behind its peers (and has no proposer streaming "
                   "to it) looks for committed WAL to take from them")
        ->capture_default_str()
        ->check(CLI::Range(std::uint32_t{10}, std::uint32_t{3600 * 1000}));
    app.add_option("--max-connections", max_connections,
                   "Most PostgreSQL-protocol connections at once; more are refused with 53300")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t{4}, std::size_t{100000}));
    app.add_option("--startup-timeout-ms", limits.startup_timeout_ms,
                   "A PostgreSQL-protocol client must complete its startup within this long")
        ->capture_default_str()
        ->check(CLI::Range(100, 3600 * 1000));
    app.add_option("--message-timeout-ms", limits.message_timeout_ms,
                   "Once part of a message has arrived, the rest must follow within this long")
        ->capture_default_str()
        ->check(CLI::Range(100, 3600 * 1000));
    app.add_option("--auth", auth_method,
                   "How clients of both ports authenticate: scram (SCRAM-SHA-256 against "
                   "--roles-file; HTTP Basic on the API) or trust (anyone who can connect may "
                   "do anything)")
        ->capture_default_str()
        ->check(CLI::IsMember({"scram", "trust"}));
    app.add_option("--roles-file", roles_file,
                   "Roles, their permissions (push, read, admin), tenants and SCRAM secrets; "
                   "re-read on SIGHUP (required with --auth scram)");
    app.add_flag("--http-open-status", http_open_status,
                 "Serve GET /v1/status and /metrics without credentials (for monitoring)");
    app.add_option("--peer-user", peer_user,
                   "Role this safekeeper presents to its peers (peer recovery, pulls); needs "
                   "read on their tenants");
    app.add_option("--peer-password-file", peer_password_file,
                   "File whose first line is the password of --peer-user");
    app.add_option("--tls-cert", tls_cert,
                   "PEM certificate (chain) for TLS on both ports: SSLRequest on the PostgreSQL "
                   "port, HTTPS on the API; re-read on SIGHUP");
    app.add_option("--tls-key", tls_key, "PEM private key of --tls-cert (not encrypted)");
    app.add_flag("--require-tls", require_tls,
                 "Refuse PostgreSQL-protocol clients that do not ask for TLS");
    app.add_option("--peer-sslrootcert", peer_sslrootcert,
                   "CA certificate(s) the peers' certificates must chain to (checked with their "
                   "host name); without it, TLS to peers is used unverified when they offer it");
    app.add_flag("--no-peer-recovery", no_peer_recovery,
                 "Never take WAL from peer safekeepers (a member that is behind then waits for "
                 "the primary)");
    app.allow_config_extras(false);  // a misspelt name in --config is an error
    app.set_config("--config", "",
                   "File of flags, one `name = value` per line (TOML or INI; the flags' long names "
                   "without --); the command line wins. SIGHUP applies its log-level again");
    app.set_version_flag("--version", std::string("safekeeper (walproposer) ") + wp::kVersion);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return 2;
    }
    // Logs go to stderr (docs/safekeeper.md, "Logs"), local time with its offset.
    spdlog::set_default_logger(spdlog::stderr_logger_mt("safekeeper"));
    spdlog::set_level(spdlog::level::from_str(log_level));
    spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %z [%l] %v");

    auto retention_cap = parse_byte_size(max_wal_retention);
    if (!retention_cap)
        return std::fprintf(stderr, "safekeeper: --max-wal-retention: %s\n",
                            retention_cap.status().message().c_str()),
               2;
    auto keep_size = parse_byte_size(wal_keep_size);
    if (!keep_size)
        return std::fprintf(stderr, "safekeeper: --wal-keep-size: %s\n",
                            keep_size.status().message().c_str()),
               2;
    auto pg_addr = parse_host_port(listen_pg);
    if (!pg_addr) return std::fprintf(stderr, "safekeeper: --listen-pg: %s\n", pg_addr.status().message().c_str()), 2;
    auto http_addr = parse_host_port(listen_http);
    if (!http_addr) return std::fprintf(stderr, "safekeeper: --listen-http: %s\n", http_addr.status().message().c_str()), 2;

    const AuthMode auth_mode = auth_method == "trust" ? AuthMode::kTrust : AuthMode::kScram;
    if (auth_mode == AuthMode::kScram && roles_file.empty())
        return std::fprintf(stderr,
                            "safekeeper: --roles-file is required with --auth scram (the default); "
                            "pass --auth trust to let every client in\n"),
               2;
    if (auth_mode == AuthMode::kTrust && !roles_file.empty())
        return std::fprintf(stderr, "safekeeper: --roles-file is unused with --auth trust\n"), 2;
    ClientCredentials peer_credentials;
    if (!peer_user.empty()) {
        if (peer_password_file.empty())
            return std::fprintf(stderr, "safekeeper: --peer-user needs --peer-password-file\n"), 2;
        auto password = read_password_file(peer_password_file);
        if (!password)
            return std::fprintf(stderr, "safekeeper: --peer-password-file: %s\n",
                                password.status().message().c_str()),
                   2;
        peer_credentials.user = peer_user;
        peer_credentials.password = *password;
    } else if (!peer_password_file.empty()) {
        return std::fprintf(stderr, "safekeeper: --peer-password-file needs --peer-user\n"), 2;
    }
    peer_credentials.sslrootcert = peer_sslrootcert;
    if (tls_cert.empty() != tls_key.empty())
        return std::fprintf(stderr, "safekeeper: --tls-cert and --tls-key go together\n"), 2;
    if (require_tls && tls_cert.empty())
        return std::fprintf(stderr, "safekeeper: --require-tls needs --tls-cert and --tls-key\n"), 2;
    std::unique_ptr<TlsServerConfig> tls;
    if (!tls_cert.empty()) {
        tls = std::make_unique<TlsServerConfig>(tls_cert, tls_key);
        if (Status loaded = tls->reload(); !loaded)
            return std::fprintf(stderr, "safekeeper: %s\n", loaded.message().c_str()), 2;
    }
    Authenticator authenticator(auth_mode, roles_file);
    if (Status loaded = authenticator.load(); !loaded)
        return std::fprintf(stderr, "safekeeper: %s\n", loaded.message().c_str()), 2;


    // Data directory: create if missing, must be a writable directory, and
    // only one daemon may use it.
#ifdef WP_POWER_LOSS_FS
    // Test build only (build/safekeeper-powerloss): SIGUSR2 = power loss.
    PowerLossFs power_loss_fs(real_file_system());
    FileSystem& fs = power_loss_fs;
#else
    FileSystem& fs = real_file_system();
#endif
    if (!fs.exists(data_dir)) {
        Status s = make_directory_durably(fs, data_dir);
        if (!s) return fail_start("cannot create data directory " + data_dir + ": " + s.message());
    }
    if (!fs.is_directory(data_dir)) return fail_start("data directory " + data_dir + " is not a directory");
    if (::access(data_dir.c_str(), R_OK | W_OK | X_OK) != 0)
        return fail_start("data directory " + data_dir + " is not writable: " + std::strerror(errno));
    const std::string lock_path = join_path(data_dir, "safekeeper.lock");
    int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0) return fail_start("cannot open " + lock_path + ": " + std::strerror(errno));
    if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0)
        return fail_start("data directory " + data_dir + " is in use by another safekeeper");
    {
        std::string pid = std::to_string(::getpid()) + "\n";
        (void)!::ftruncate(lock_fd, 0);
        (void)!::pwrite(lock_fd, pid.data(), pid.size(), 0);
    }

    // Signals are handled by sigwait in this thread only.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
#ifdef WP_POWER_LOSS_FS
    sigaddset(&sigs, SIGUSR2);
#endif
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    raise_open_file_limit();
    WalStorageOptions options;
    options.preallocate_with_fallocate = !zero_fill;
    TimelineRegistry registry(fs, data_dir, node_id, options);
    registry.set_max_wal_retention(*retention_cap);
    registry.set_wal_keep_size(*keep_size);
    PgServer pg_server(registry, authenticator, max_connections, limits);
    pg_server.set_tls(tls.get(), require_tls);
    Status s = pg_server.listen(pg_addr->first, pg_addr->second);
    if (!s) return fail_start("--listen-pg " + listen_pg + ": " + s.message());
    HttpApiOptions http_options;
    http_options.open_status = http_open_status;
    http_options.peer_credentials = peer_credentials;
    http_options.tls = tls.get();
    HttpApi http(registry, pg_server, node_id, authenticator, http_options);
    s = http.listen(http_addr->first, http_addr->second);
    if (!s) return fail_start("--listen-http " + listen_http + ": " + s.message());

    {
        const std::string& host = http_addr->first;
        const bool ipv6 = host.find(':') != std::string::npos && host.front() != '[';
        registry.set_http_address(std::string(tls ? "https://" : "") +
                                  (ipv6 ? "[" + host + "]" : host) + ":" +
                                  std::to_string(http.bound_port()));
    }

    s = registry.load_all();
    if (!s) return fail_start("cannot read data directory: " + s.message());

    pg_server.start();
    http.start();
    PeerRecoveryOptions recovery_options;
    recovery_options.interval = std::chrono::milliseconds(peer_recovery_interval_ms);
    recovery_options.credentials = peer_credentials;
    PeerRecovery peer_recovery(registry, recovery_options);
    if (!no_peer_recovery) peer_recovery.start();
    spdlog::info("safekeeper {} node {} serving {} timelines from {}; PostgreSQL protocol on {}:{}, HTTP on {}:{}",
                 wp::kVersion, node_id, registry.list().size(), data_dir, pg_addr->first,
                 pg_server.bound_port(), http_addr->first, http.bound_port());

    if (auth_mode == AuthMode::kTrust) {
        if (!is_loopback_host(pg_addr->first) || !is_loopback_host(http_addr->first))
            spdlog::warn(
                "AUTHENTICATION IS OFF (--auth trust) and a port listens beyond loopback "
                "(PostgreSQL protocol {}, HTTP {}): anyone who can reach it can fence the "
                "primary, read all WAL and delete timelines",
                listen_pg, listen_http);
        else
            spdlog::info("authentication is off (--auth trust); ports listen on loopback only");
    } else {
        spdlog::info("clients authenticate with SCRAM-SHA-256: {} roles from {}",
                     authenticator.role_count(), roles_file);
    }
    if (tls) {
        spdlog::info("TLS on both ports with {}{}", tls_cert,
                     require_tls ? "; PostgreSQL-protocol clients must use it" : "");
    } else if (!is_loopback_host(pg_addr->first) || !is_loopback_host(http_addr->first)) {
        spdlog::warn("TLS is off (no --tls-cert) and a port listens beyond loopback: WAL and "
                     "HTTP Basic passwords cross the network unencrypted");
    }

    // Under systemd (Type=notify): ready now. A no-op elsewhere.
    sd_notifyf(0, "READY=1\nSTATUS=serving %zu timelines\nMAINPID=%lu", registry.list().size(),
               static_cast<unsigned long>(::getpid()));

    int sig = 0;
    for (;;) {
        sigwait(&sigs, &sig);
        if (sig != SIGHUP) break;
        // A reload (systemctl reload, log rotation) never stops the daemon.
        if (auto* config = app.get_config_ptr(); config != nullptr && config->count() > 0) {
            const std::string path = config->as<std::string>();
            auto level = config_file_log_level(path);
            if (!level) {
                spdlog::error("received SIGHUP: {} not re-read: {}", path, level.status().message());
            } else if (*level) {
                spdlog::set_level(spdlog::level::from_str(**level));
                spdlog::info("received SIGHUP: log level {} (from {})", **level, path);
            }
        }
        if (tls) {
            if (Status reloaded = tls->reload(); !reloaded)
                spdlog::error("received SIGHUP: TLS certificate not reloaded, the previous one "
                              "stays: {}",
                              reloaded.message());
            else
                spdlog::info("received SIGHUP: reloaded the TLS certificate from {}", tls_cert);
        }
        if (auth_mode == AuthMode::kTrust) {
            spdlog::info("received SIGHUP: nothing to reload under --auth trust; still serving");
        } else if (Status reloaded = authenticator.load(); !reloaded) {
            spdlog::error("received SIGHUP: roles file not reloaded, the previous roles stay: {}",
                          reloaded.message());
        } else {
            spdlog::info("received SIGHUP: reloaded {} roles from {}", authenticator.role_count(),
                         roles_file);
        }
    }
#ifdef WP_POWER_LOSS_FS
    if (sig == SIGUSR2) power_loss_fs.lose_power_and_exit();
#endif
    sd_notify(0, "STOPPING=1");
    spdlog::info("received {}, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    peer_recovery.stop();
    http.stop();
    pg_server.stop();
    registry.persist_all_horizons();
    spdlog::info("shutdown complete");
    ::close(lock_fd);
    return 0;
}
