// safekeeper: the acceptor daemon of walproposer.
//
//   safekeeper -D DIR --id N [--listen-pg HOST:PORT] [--listen-http HOST:PORT]
//              [--no-peer-recovery] [--peer-recovery-interval-ms N]
//   safekeeper pull-timeline --from URL --to URL --tenant T --timeline L
//                                          (operator command: pull_timeline/cli.h)
//
// Start-up order: check flags, lock DIR (one daemon per directory), bind both
// ports (so "address in use" fails fast), load every timeline, then serve.
// SIGTERM/SIGINT: stop accepting, close connections after their current
// batch (and fsync), persist commit/truncate LSNs, exit 0. SIGHUP is logged
// and ignored (nothing to reload). Under systemd, READY=1 is sent once the
// daemon serves (Type=notify). Exit codes: 0 ok,
// 1 runtime/start-up error, 2 bad flags (CLI11's convention for parse errors
// is 1xx; we map them to 2).
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <cstdio>
#include <string>

#include "storage/durable_file.h"
#ifdef WP_POWER_LOSS_FS
#include "support/power_loss_fs.h"
#endif
#include "http/http_api.h"
#include "pull_timeline/cli.h"
#include "recovery/peer_recovery.h"
#include "wire/server.h"
#include "retention/horizon.h"
#include "timeline/timeline.h"
#include "walproposer/version.h"

namespace {

int fail_start(const std::string& msg) {
    spdlog::critical("{}", msg);
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace wp;
    using namespace wp::sk;
    if (argc >= 2 && std::string(argv[1]) == "pull-timeline")
        return run_pull_timeline_command(argc - 1, argv + 1);
    CLI::App app{"safekeeper: quorum-durable WAL acceptor for walproposer", "safekeeper"};
    app.footer(
        "Operator command (see safekeeper pull-timeline --help):\n"
        "  safekeeper pull-timeline --from URL --to URL --tenant T --timeline L\n"
        "      copy a timeline from a healthy safekeeper to a new one");
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
    app.add_flag("--no-peer-recovery", no_peer_recovery,
                 "Never take WAL from peer safekeepers (a member that is behind then waits for "
                 "the primary)");
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

    WalStorageOptions options;
    options.preallocate_with_fallocate = !zero_fill;
    TimelineRegistry registry(fs, data_dir, node_id, options);
    registry.set_max_wal_retention(*retention_cap);
    registry.set_wal_keep_size(*keep_size);
    PgServer pg_server(registry, max_connections, limits);
    Status s = pg_server.listen(pg_addr->first, pg_addr->second);
    if (!s) return fail_start("--listen-pg " + listen_pg + ": " + s.message());
    HttpApi http(registry, pg_server, node_id);
    s = http.listen(http_addr->first, http_addr->second);
    if (!s) return fail_start("--listen-http " + listen_http + ": " + s.message());

    {
        const std::string& host = http_addr->first;
        const bool ipv6 = host.find(':') != std::string::npos && host.front() != '[';
        registry.set_http_address((ipv6 ? "[" + host + "]" : host) + ":" +
                                  std::to_string(http.bound_port()));
    }

    s = registry.load_all();
    if (!s) return fail_start("cannot read data directory: " + s.message());

    pg_server.start();
    http.start();
    PeerRecoveryOptions recovery_options;
    recovery_options.interval = std::chrono::milliseconds(peer_recovery_interval_ms);
    PeerRecovery peer_recovery(registry, recovery_options);
    if (!no_peer_recovery) peer_recovery.start();
    spdlog::info("safekeeper {} node {} serving {} timelines from {}; PostgreSQL protocol on {}:{}, HTTP on {}:{}",
                 wp::kVersion, node_id, registry.list().size(), data_dir, pg_addr->first,
                 pg_server.bound_port(), http_addr->first, http.bound_port());

    // Under systemd (Type=notify): ready now. A no-op elsewhere.
    sd_notifyf(0, "READY=1\nSTATUS=serving %zu timelines\nMAINPID=%lu", registry.list().size(),
               static_cast<unsigned long>(::getpid()));

    int sig = 0;
    for (;;) {
        sigwait(&sigs, &sig);
        if (sig != SIGHUP) break;
        // Every setting comes from the command line, so there is nothing to
        // reload yet; a reload (systemctl reload, log rotation) must not stop
        // the daemon.
        spdlog::info("received SIGHUP: nothing to reload (settings are command-line flags; "
                     "a restart applies new ones); still serving");
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
