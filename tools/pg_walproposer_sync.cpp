// pg_walproposer_sync: the first step of every failover (docs/failover.md).
//
// Runs the consensus core's sync proposer (ProposerConfig::sync) against the
// safekeepers of one timeline: it wins a new term with no WAL of its own,
// copies the donor's WAL, makes a quorum hold and commit all of it, and
// fences every PostgreSQL timeline the safekeepers hold (their control files
// get min_pg_timeline = highest timeline + 1). When it exits 0, everything any
// old primary acknowledged lies at or below the printed sync LSN, the
// safekeepers serve WAL up to it, and the old primary can never be elected
// again. Nothing here decides anything: the core does; this file only moves
// bytes between libpq connections and the core, with a deadline.
//
// Exit status: 0 synced; 1 failed (no quorum within --timeout, nothing to
// sync, safekeepers that disagree); 2 usage error.
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "../src/pg/safekeeper_conn.h"
#include "../src/pg/wait_bits.h"
#include "command_line.h"
#include "walproposer/config.h"
#include "walproposer/configuration.h"
#include "walproposer/timeline_key.h"
#include "walproposer/proposer.h"
#include "walproposer/version.h"

namespace {

constexpr const char kProgram[] = "pg_walproposer_sync";

struct Options {
    std::vector<wp::SafekeeperAddress> safekeepers;  // the plain list form
    // The member form (id=host:port,...): a configuration to start from
    // (generation 1); the proposer adopts the newer one the safekeepers hold.
    wp::Configuration configuration;
    std::string tenant_hex;
    std::string timeline_hex;
    double timeout_seconds = 30;
    wp::pg::ConninfoPairs conninfo;  // --conninfo: libpq options of every connection
    bool json = false;
    bool verbose = false;
};

void print_help() {
    std::printf(
        "%s brings the safekeepers of one timeline to a synced, fenced state:\n"
        "the first step of every failover. It wins a new term, makes a quorum hold\n"
        "and commit all WAL any old primary may have acknowledged, prints that LSN,\n"
        "and fences the old primary (no PostgreSQL timeline the safekeepers hold can\n"
        "be elected again; a standby promoted after this sync can).\n"
        "\n"
        "Usage:\n"
        "  %s --safekeepers HOST:PORT,... --tenant-id HEX --timeline-id HEX [OPTION]...\n"
        "\n"
        "Options:\n"
        "  -s, --safekeepers LIST   the safekeepers, as in walproposer.safekeepers\n"
        "                           (host:port,... or, with a membership configuration,\n"
        "                           id=host:port,...: then the configuration the\n"
        "                           safekeepers hold is used)\n"
        "      --tenant-id HEX      tenant id (32 hex digits; walproposer.tenant_id)\n"
        "      --timeline-id HEX    timeline id (32 hex digits; walproposer.timeline_id)\n"
        "      --system-id N        derive both ids from the system identifier, as the\n"
        "                           extension does when walproposer.tenant_id is empty\n"
        "  -t, --timeout SECONDS    give up when no quorum completes in time (default 30)\n"
        "      --conninfo STRING    libpq options for every safekeeper connection, as in\n"
        "                           walproposer.safekeeper_conninfo, e.g.\n"
        "                           'user=walproposer passfile=/etc/walproposer/pgpass\n"
        "                           sslmode=verify-full sslrootcert=/etc/.../ca.crt';\n"
        "                           not host, hostaddr, port, dbname, options or\n"
        "                           replication. Defaults: user=walproposer,\n"
        "                           sslmode=prefer (so PGUSER and PGSSLMODE are not\n"
        "                           used); PGPASSFILE, ~/.pgpass, PGSSLROOTCERT etc. work\n"
        "                           as usual\n"
        "      --json               print the result as one JSON object on stdout\n"
        "  -v, --verbose            log the proposer's steps on stderr\n"
        "  -V, --version            print the version and exit\n"
        "  -?, --help               show this help and exit\n"
        "\n"
        "Exit status: 0 synced, 1 failed (reason on stderr), 2 usage error.\n",
        kProgram, kProgram);
}

[[noreturn]] void usage_error(const std::string& message) {
    std::fprintf(stderr, "%s: %s\nTry \"%s --help\" for more information.\n", kProgram,
                 message.c_str(), kProgram);
    std::exit(2);
}

Options parse_options(int argc, char** argv) {
    Options options;
    std::string system_id;
    bool have_list = false;
    for (wp::tools::ArgCursor args(argc, argv, usage_error); args.next();) {
        const std::string& arg = args.arg();
        if (args.handle_help_or_version(print_help, kProgram)) {
            std::exit(0);
        } else if (args.is("--safekeepers", "-s")) {
            auto setting = wp::parse_safekeepers_setting(args.value("--safekeepers"));
            if (!setting) usage_error("invalid --safekeepers: " + setting.message());
            if (setting->member_form) {
                options.configuration.generation = 1;
                options.configuration.members = std::move(setting->members);
            } else {
                if (setting->addresses.empty()) usage_error("--safekeepers is empty");
                options.safekeepers = std::move(setting->addresses);
            }
            have_list = true;
        } else if (args.is("--tenant-id")) {
            auto id = wp::parse_hex_id(args.value("--tenant-id"));
            if (!id) usage_error("invalid --tenant-id: " + id.message());
            options.tenant_hex = *id;
        } else if (args.is("--timeline-id")) {
            auto id = wp::parse_hex_id(args.value("--timeline-id"));
            if (!id) usage_error("invalid --timeline-id: " + id.message());
            options.timeline_hex = *id;
        } else if (args.is("--conninfo")) {
            auto conninfo = wp::pg::parse_safekeeper_conninfo(args.value("--conninfo"));
            if (!conninfo) usage_error("invalid --conninfo: " + conninfo.message());
            options.conninfo = std::move(*conninfo);
        } else if (args.is("--system-id")) {
            system_id = args.value("--system-id");
        } else if (args.is("--timeout", "-t")) {
            const std::string text = args.value("--timeout");
            char* end = nullptr;
            options.timeout_seconds = std::strtod(text.c_str(), &end);
            if (text.empty() || *end != '\0' || !(options.timeout_seconds > 0) ||
                options.timeout_seconds > 86400)
                usage_error("invalid --timeout \"" + text + "\": expected seconds in (0, 86400]");
        } else if (arg == "--json") {
            options.json = true;
        } else if (arg == "--verbose" || arg == "-v") {
            options.verbose = true;
        } else {
            usage_error("unknown argument \"" + arg + "\"");
        }
    }
    if (!have_list) usage_error("--safekeepers is required");
    if (!system_id.empty()) {
        char* end = nullptr;
        const unsigned long long id = std::strtoull(system_id.c_str(), &end, 10);
        if (*end != '\0' || id == 0) usage_error("invalid --system-id \"" + system_id + "\"");
        if (options.tenant_hex.empty()) options.tenant_hex = wp::default_id_from_system_id(id);
        if (options.timeline_hex.empty()) options.timeline_hex = wp::default_id_from_system_id(id);
    }
    if (options.tenant_hex.empty() || options.timeline_hex.empty())
        usage_error("--tenant-id and --timeline-id (or --system-id) are required");
    return options;
}

wp::TimeMs now_ms() {
    return static_cast<wp::TimeMs>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::steady_clock::now().time_since_epoch())
                                       .count());
}

// Moves bytes between the libpq connections and the sync proposer.
class SyncDriver {
public:
    explicit SyncDriver(const Options& options) : options_(options) {
        std::random_device random;
        const std::uint64_t seed = (static_cast<std::uint64_t>(random()) << 32) ^ random() ^
                                   static_cast<std::uint64_t>(getpid());
        wp::ProposerConfig config;
        config.sync = true;
        config.acceptor_count = options.safekeepers.size();
        config.configuration = options.configuration;
        config.greeting.tenant_id = *wp::parse_id(options.tenant_hex);
        config.greeting.timeline_id = *wp::parse_id(options.timeline_hex);
        for (std::size_t i = 0; i < config.greeting.proposer_id.size(); ++i)
            config.greeting.proposer_id[i] = static_cast<std::uint8_t>(seed >> ((i % 8) * 8));
        config.reconnect_interval_ms = 500;
        config.election_timeout_ms = 3000;
        config.response_timeout_ms = 5000;
        // The commit LSN reaches every safekeeper with the next message:
        // keep them coming while the sync waits for stragglers.
        config.heartbeat_interval_ms = 100;
        config.random_seed = seed;
        proposer_ = std::make_unique<wp::Proposer>(std::move(config), nullptr);
        sync_slots();
    }

    // Runs until the sync is done (true), the proposer gives up, or the
    // deadline passes (false; failure() says why).
    bool run() {
        const wp::TimeMs started = now_ms();
        const wp::TimeMs deadline = started + static_cast<wp::TimeMs>(options_.timeout_seconds * 1000);
        execute(proposer_->start(started, wp::kInvalidLsn), started);
        wp::TimeMs done_at = 0;
        for (;;) {
            const wp::ProposerStatus status = proposer_->status();
            if (status.sync_done) {
                // A quorum is enough; give the other reachable safekeepers a
                // moment to reach the sync LSN too, so a standby streaming
                // from any of them can catch up.
                if (done_at == 0) done_at = now_ms();
                bool all = true;
                for (const auto& a : status.acceptors)
                    if (a.state != wp::AcceptorConnState::kOffline &&
                        a.state != wp::AcceptorConnState::kConnecting && a.commit_lsn < status.sync_lsn)
                        all = false;
                if (all || now_ms() >= std::min(done_at + kStragglerGraceMs, deadline)) return true;
            }
            if (status.state == wp::ProposerState::kSuperseded) {
                failure_ = status.superseded_reason;
                return false;
            }
            const wp::TimeMs now = now_ms();
            if (now >= deadline) {
                failure_ = timeout_message(status);
                return false;
            }
            wait_and_dispatch(std::min<wp::TimeMs>(100, deadline - now));
            const wp::TimeMs after = now_ms();
            expire_connects(after);
            execute(proposer_->on_tick(after), after);
        }
    }

    const std::string& failure() const { return failure_; }
    wp::ProposerStatus status() const { return proposer_->status(); }

private:
    // One connection per proposer slot (a configuration adopted from the
    // safekeepers may add members).
    void sync_slots() {
        while (connections_.size() < proposer_->slot_count()) {
            connections_.push_back(std::make_unique<wp::pg::SafekeeperConnection>());
            last_error_.emplace_back();
            answered_.push_back(false);
            connect_started_at_.push_back(0);
        }
    }

    wp::SafekeeperAddress address_of(std::size_t index) const {
        if (proposer_->configuration().generation != 0) return proposer_->slot_member(index).address;
        return options_.safekeepers[index];
    }

    void wait_and_dispatch(wp::TimeMs timeout_ms) {
        std::vector<pollfd> fds;
        std::vector<std::size_t> owners;
        for (std::size_t i = 0; i < connections_.size(); ++i) {
            const auto& c = *connections_[i];
            if (c.state() == wp::pg::SafekeeperConnection::State::kClosed || c.socket() < 0) continue;
            short events = 0;
            if (c.wanted_events() & wp::pg::kWaitReadable) events |= POLLIN;
            if (c.wanted_events() & wp::pg::kWaitWritable) events |= POLLOUT;
            fds.push_back(pollfd{c.socket(), events, 0});
            owners.push_back(i);
        }
        if (fds.empty()) {
            usleep(static_cast<useconds_t>(timeout_ms * 1000));
            return;
        }
        const int ready = poll(fds.data(), fds.size(), static_cast<int>(timeout_ms));
        if (ready <= 0) return;
        for (std::size_t j = 0; j < fds.size(); ++j)
            if (fds[j].revents != 0) on_ready(owners[j]);
    }

    void on_ready(std::size_t index) {
        auto& connection = *connections_[index];
        if (connection.state() == wp::pg::SafekeeperConnection::State::kClosed) return;
        std::vector<std::vector<std::uint8_t>> inbox;
        bool became_streaming = false;
        const wp::Status status = connection.on_ready(inbox, became_streaming);
        const wp::TimeMs now = now_ms();
        if (became_streaming) {
            last_error_[index].clear();
            answered_[index] = true;
            log_line("connected to safekeeper " + address_of(index).to_string());
            execute(proposer_->on_connected(index, now), now);
        }
        for (const auto& payload : inbox) {
            if (connection.state() != wp::pg::SafekeeperConnection::State::kStreaming) break;
            execute(proposer_->on_message(index, payload.data(), payload.size(), now), now);
        }
        if (!status.ok()) lost(index, status.message(), now);
    }

    // Moves resolving connections on and gives up on those that take too
    // long to connect (libpq's connect_timeout does not apply here).
    void expire_connects(wp::TimeMs now) {
        using State = wp::pg::SafekeeperConnection::State;
        for (std::size_t i = 0; i < connections_.size(); ++i) {
            if (const wp::Status status = connections_[i]->advance(); !status.ok()) {
                lost(i, status.message(), now);
                continue;
            }
            const auto state = connections_[i]->state();
            if ((state == State::kResolving || state == State::kConnecting ||
                 state == State::kStartingPush) &&
                now - connect_started_at_[i] > kConnectTimeoutMs) {
                connections_[i]->close();
                lost(i,
                     state == State::kResolving ? "connection timed out resolving its host name"
                                                : "connection timed out",
                     now);
            }
        }
    }

    void lost(std::size_t index, const std::string& reason, wp::TimeMs now) {
        if (reason != last_error_[index])
            log_line("safekeeper " + address_of(index).to_string() + ": " + reason);
        last_error_[index] = reason;
        execute(proposer_->on_disconnected(index, now, reason), now);
    }

    void connect(std::size_t index, wp::TimeMs now) {
        const wp::SafekeeperAddress address = address_of(index);
        // create_timeline=false: a sync never creates a timeline (a mistyped
        // id must not leave empty timelines on every safekeeper).
        connect_started_at_[index] = now;
        const wp::Status status = connections_[index]->start(wp::pg::PushTarget{
            address.host, address.port, kProgram, options_.tenant_hex, options_.timeline_hex,
            "-c create_timeline=false", options_.conninfo});
        if (!status.ok()) lost(index, status.message(), now);
    }

    void execute(wp::ProposerOutput&& output, wp::TimeMs now) {
        sync_slots();
        for (std::size_t index : output.disconnect) connections_[index]->close();
        std::vector<std::pair<std::size_t, std::string>> send_failures;
        for (auto& message : output.messages) {
            auto& connection = *connections_[message.acceptor];
            if (connection.state() != wp::pg::SafekeeperConnection::State::kStreaming) continue;
            const wp::Status sent = connection.send(std::move(message.payload));
            if (!sent.ok()) send_failures.emplace_back(message.acceptor, sent.message());
        }
        for (std::size_t index : output.connect) connect(index, now);
        for (const auto& line : output.log)
            if (line.level != wp::LogLevel::kDebug) log_line(line.text);
        for (const auto& [index, reason] : send_failures) lost(index, reason, now);
    }

    void log_line(const std::string& text) const {
        if (options_.verbose) std::fprintf(stderr, "%s: %s\n", kProgram, text.c_str());
    }

    // Why the sync did not complete: how many safekeepers answered at all
    // during the run, and for each the last thing known about it.
    std::string timeout_message(const wp::ProposerStatus& status) const {
        std::size_t answered = 0;
        for (bool a : answered_) answered += a ? 1 : 0;
        char seconds[32];
        std::snprintf(seconds, sizeof seconds, "%g", options_.timeout_seconds);
        std::string text = "no quorum of safekeepers completed the sync within " +
                           std::string(seconds) + " s (" + std::to_string(answered) + " of " +
                           std::to_string(status.acceptors.size()) + " answered, " +
                           std::to_string(status.quorum) + " needed)";
        for (std::size_t i = 0; i < status.acceptors.size(); ++i) {
            const std::string& error =
                last_error_[i].empty() ? status.acceptors[i].last_error : last_error_[i];
            std::string what = error;
            if (what.empty())
                what = answered_[i] ? "answered; no quorum to complete the sync with"
                                    : "never answered";
            text += "\n  " + address_of(i).to_string() + ": " + what;
        }
        return text;
    }

    static constexpr wp::TimeMs kConnectTimeoutMs = 5000;
    static constexpr wp::TimeMs kStragglerGraceMs = 2000;
    const Options& options_;
    std::unique_ptr<wp::Proposer> proposer_;
    std::vector<std::unique_ptr<wp::pg::SafekeeperConnection>> connections_;
    std::vector<std::string> last_error_;
    std::vector<bool> answered_;  // reached the push stream at least once
    std::vector<wp::TimeMs> connect_started_at_;
    std::string failure_;
};

}  // namespace

int main(int argc, char** argv) {
    const Options options = parse_options(argc, argv);
    SyncDriver driver(options);
    const wp::TimeMs started = now_ms();
    const bool synced = driver.run();
    const wp::ProposerStatus status = driver.status();
    if (!synced) {
        std::fprintf(stderr, "%s: sync failed: %s\n", kProgram, driver.failure().c_str());
        if (options.json)
            std::printf("{\"ok\": false, \"error\": \"%s\"}\n",
                        [&] {
                            std::string escaped;
                            for (char c : driver.failure()) {
                                if (c == '"' || c == '\\') escaped += '\\';
                                escaped += c == '\n' ? ' ' : c;
                            }
                            return escaped;
                        }()
                            .c_str());
        return 1;
    }
    std::size_t synced_count = 0;
    for (const auto& a : status.acceptors)
        if (a.state == wp::AcceptorConnState::kStreaming && a.commit_lsn >= status.sync_lsn) ++synced_count;
    const wp::TimeMs elapsed = now_ms() - started;
    if (options.json) {
        std::printf("{\"ok\": true, \"sync_lsn\": \"%s\", \"term\": %llu, \"fence_pg_timeline\": %u, "
                    "\"system_id\": \"%llu\", \"safekeepers\": %zu, \"synced\": %zu, "
                    "\"elapsed_ms\": %llu}\n",
                    wp::format_lsn(status.sync_lsn).c_str(),
                    static_cast<unsigned long long>(status.term), status.fence_pg_timeline,
                    static_cast<unsigned long long>(status.sync_system_id), status.acceptors.size(),
                    synced_count, static_cast<unsigned long long>(elapsed));
    } else {
        std::printf("%s: synced to %s in term %llu on %zu of %zu safekeepers (%llu ms); "
                    "PostgreSQL timelines below %u are fenced\n",
                    kProgram, wp::format_lsn(status.sync_lsn).c_str(),
                    static_cast<unsigned long long>(status.term), synced_count,
                    status.acceptors.size(), static_cast<unsigned long long>(elapsed),
                    status.fence_pg_timeline);
    }
    return 0;
}
