// pg_walproposer_restore: a restore_command that fetches WAL from the
// safekeepers (docs/replication.md, "Restoring WAL from the safekeepers").
//
// PostgreSQL runs it as `restore_command = 'pg_walproposer_restore ... %f %p'`
// with the data directory as the working directory. For a segment file name
// it copies the segment's committed WAL from a safekeeper over the physical
// replication protocol (START_REPLICATION from the segment's start, stopping
// at the segment's end or at the serving safekeeper's commit LSN) and writes
// a whole segment to %p, zero-filled after the last committed byte: a
// standby replays up to there and asks again later. For a NNNNNNNN.history
// name it writes the file TIMELINE_HISTORY returns. Each safekeeper of the
// list is tried in turn; a full segment ends the search, otherwise the most
// complete partial one is written.
//
// Safety: a safekeeper sends only WAL below its commit_lsn, which no later
// primary can take back, so whatever this writes is a prefix of the WAL every
// future primary continues.
//
// Exit status: 0 restored; 1 not available (no safekeeper has it, or none
// could be reached); 2 usage error. PostgreSQL treats any of them but 0 as
// "not in the archive" (never a signal, never > 125: those stop recovery).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../safekeeper/storage/wal_format.h"
#include "../src/pg/safekeeper_conn.h"
#include "command_line.h"
#include "../src/pg/wal_fetch.h"
#include "walproposer/config.h"
#include "walproposer/configuration.h"
#include "walproposer/lsn.h"
#include "walproposer/timeline_key.h"
#include "walproposer/version.h"

namespace {

constexpr const char kProgram[] = "pg_walproposer_restore";

struct Options {
    std::vector<wp::SafekeeperAddress> safekeepers;
    std::string tenant_hex;
    std::string timeline_hex;
    std::string pgdata = ".";  // where global/pg_control gives the system id
    double timeout_seconds = 10;
    int connect_timeout_seconds = 3;
    wp::pg::ConninfoPairs conninfo;
    bool verbose = false;
    std::string file_name;    // %f
    std::string target_path;  // %p
};

void print_help() {
    std::printf(
        "%s fetches a WAL segment or a timeline history file from the safekeepers:\n"
        "a restore_command for standbys (committed WAL only; the newest segment\n"
        "partial, zero-filled after the safekeepers' commit position).\n"
        "\n"
        "Usage:\n"
        "  %s --safekeepers HOST:PORT,... [OPTION]... FILE PATH\n"
        "\n"
        "  restore_command = '%s --safekeepers sk1:5454,sk2:5454,sk3:5454 %%f %%p'\n"
        "\n"
        "Options:\n"
        "  -s, --safekeepers LIST      the safekeepers, as in walproposer.safekeepers\n"
        "                              (host:port,... or id=host:port,...)\n"
        "      --tenant-id HEX         tenant id (default: from the system identifier)\n"
        "      --timeline-id HEX       timeline id (default: from the system identifier)\n"
        "  -D, --pgdata DIR            data directory whose global/pg_control gives the\n"
        "                              system identifier (default: the current directory,\n"
        "                              which is the data directory under restore_command)\n"
        "      --conninfo STRING       libpq options for every connection, e.g.\n"
        "                              'user=replica passfile=/etc/walproposer/pgpass\n"
        "                              sslmode=verify-full sslrootcert=/etc/.../ca.crt';\n"
        "                              not host, hostaddr, port, dbname, options or\n"
        "                              replication\n"
        "  -t, --timeout SECONDS       give up after this long in all (default 10)\n"
        "      --connect-timeout SEC   per safekeeper connection (default 3)\n"
        "  -v, --verbose               also say which safekeeper served what\n"
        "  -V, --version               print the version and exit\n"
        "  -?, --help                  show this help and exit\n"
        "\n"
        "Exit status: 0 restored, 1 not available (reason on stderr unless it is simply\n"
        "not there yet), 2 usage error.\n",
        kProgram, kProgram, kProgram);
}

[[noreturn]] void usage_error(const std::string& message) {
    std::fprintf(stderr, "%s: %s\nTry \"%s --help\" for more information.\n", kProgram,
                 message.c_str(), kProgram);
    std::exit(2);
}

std::optional<double> parse_seconds(const std::string& text) {
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !(v > 0) || v > 3600) return std::nullopt;
    return v;
}

// The system identifier: the first 8 bytes of global/pg_control (the first
// field of PostgreSQL's ControlFileData, in the host's byte order).
std::optional<std::uint64_t> read_system_id(const std::string& pgdata, std::string& error) {
    const std::string path = pgdata + "/global/pg_control";
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        error = "cannot open " + path + ": " + std::strerror(errno);
        return std::nullopt;
    }
    std::uint64_t id = 0;
    const ssize_t n = ::read(fd, &id, sizeof id);
    ::close(fd);
    if (n != static_cast<ssize_t>(sizeof id) || id == 0) {
        error = "cannot read the system identifier from " + path;
        return std::nullopt;
    }
    return id;
}

Options parse_options(int argc, char** argv) {
    Options options;
    std::vector<std::string> positional;
    for (wp::tools::ArgCursor args(argc, argv, usage_error); args.next();) {
        const std::string& arg = args.arg();
        if (args.handle_help_or_version(print_help, kProgram)) {
            std::exit(0);
        } else if (args.is("--safekeepers", "-s")) {
            auto setting = wp::parse_safekeepers_setting(args.value("--safekeepers"));
            if (!setting) usage_error("invalid --safekeepers: " + setting.message());
            if (setting->member_form)
                for (const auto& m : setting->members) options.safekeepers.push_back(m.address);
            else
                options.safekeepers = std::move(setting->addresses);
            if (options.safekeepers.empty()) usage_error("--safekeepers is empty");
        } else if (args.is("--tenant-id")) {
            auto id = wp::parse_hex_id(args.value("--tenant-id"));
            if (!id) usage_error("invalid --tenant-id: " + id.message());
            options.tenant_hex = *id;
        } else if (args.is("--timeline-id")) {
            auto id = wp::parse_hex_id(args.value("--timeline-id"));
            if (!id) usage_error("invalid --timeline-id: " + id.message());
            options.timeline_hex = *id;
        } else if (args.is("--pgdata", "-D")) {
            options.pgdata = args.value("--pgdata");
        } else if (args.is("--conninfo")) {
            auto conninfo = wp::pg::parse_safekeeper_conninfo(args.value("--conninfo"));
            if (!conninfo) usage_error("invalid --conninfo: " + conninfo.message());
            options.conninfo = std::move(*conninfo);
        } else if (args.is("--timeout", "-t")) {
            const std::string text = args.value("--timeout");
            const auto v = parse_seconds(text);
            if (!v)
                usage_error("invalid --timeout \"" + text + "\": expected seconds in (0, 3600]");
            options.timeout_seconds = *v;
        } else if (args.is("--connect-timeout")) {
            const std::string text = args.value("--connect-timeout");
            const auto v = parse_seconds(text);
            if (!v)
                usage_error("invalid --connect-timeout \"" + text +
                            "\": expected seconds in (0, 3600]");
            // libpq takes whole seconds, at least 2.
            options.connect_timeout_seconds = std::max(2, static_cast<int>(*v + 0.999));
        } else if (arg == "--verbose" || arg == "-v") {
            options.verbose = true;
        } else if (!arg.empty() && arg[0] == '-' && arg != "-") {
            usage_error("unknown option \"" + arg + "\"");
        } else {
            positional.push_back(arg);
        }
    }
    if (options.safekeepers.empty()) usage_error("--safekeepers is required");
    if (positional.size() != 2) usage_error("expected two arguments, FILE (%f) and PATH (%p)");
    options.file_name = positional[0];
    options.target_path = positional[1];
    if (options.tenant_hex.empty() != options.timeline_hex.empty())
        usage_error("give both --tenant-id and --timeline-id, or neither");
    if (options.tenant_hex.empty()) {
        std::string error;
        const auto id = read_system_id(options.pgdata, error);
        if (!id) {
            std::fprintf(stderr, "%s: %s (give --tenant-id and --timeline-id, or --pgdata)\n",
                         kProgram, error.c_str());
            std::exit(1);
        }
        options.tenant_hex = options.timeline_hex = wp::default_id_from_system_id(*id);
    }
    return options;
}

using Clock = wp::pg::WalFetchConnection::Clock;

// What the caller asked for.
struct Request {
    bool history = false;
    std::uint32_t pg_timeline = 0;
    wp::sk::SegmentNumber segno = 0;  // segments only; needs the segment size to resolve
    std::string name;
};

// "NNNNNNNN.history" or a 24-hex-digit segment name; anything else (.partial,
// .backup, RECOVERY*) is never served.
std::optional<Request> parse_request(const std::string& name) {
    Request r;
    r.name = name;
    if (name.size() == 16 && name.compare(8, 8, ".history") == 0) {
        std::uint32_t tli = 0;
        for (int i = 0; i < 8; ++i) {
            const char c = name[static_cast<std::size_t>(i)];
            if (!std::isxdigit(static_cast<unsigned char>(c)) ||
                std::islower(static_cast<unsigned char>(c)))
                return std::nullopt;
            tli = tli * 16 + static_cast<std::uint32_t>(std::isdigit(static_cast<unsigned char>(c))
                                                            ? c - '0'
                                                            : c - 'A' + 10);
        }
        if (tli < 2) return std::nullopt;
        r.history = true;
        r.pg_timeline = tli;
        return r;
    }
    return name.size() == 24 ? std::optional<Request>(r) : std::nullopt;
}

// Writes `size` bytes to `path` (created or replaced), or says why not.
bool write_file(const std::string& path, const char* data, std::size_t size, std::string& error) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        error = "cannot create " + path + ": " + std::strerror(errno);
        return false;
    }
    std::size_t done = 0;
    while (done < size) {
        const ssize_t n = ::write(fd, data + done, size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            error = "cannot write " + path + ": " + (n < 0 ? std::strerror(errno) : "short write");
            ::close(fd);
            ::unlink(path.c_str());
            return false;
        }
        done += static_cast<std::size_t>(n);
    }
    if (::close(fd) != 0) {
        error = "cannot write " + path + ": " + std::strerror(errno);
        ::unlink(path.c_str());
        return false;
    }
    return true;
}

// PostgreSQL replaces its pg_wal copy of a segment by the restored file. A
// standby that also streamed from a primary may hold more of the newest
// segment than the safekeepers have committed (WAL not yet confirmed, or the
// shutdown checkpoint a stopping primary sends its standbys only). Returning
// less would make it lose WAL it already had, and a promotion would then
// fail on the missing record. So when pg_wal holds the segment and its bytes
// equal what was fetched, the local bytes after the fetched ones are kept:
// the file is never less than what PostgreSQL would have read anyway.
// Returns true when the tail was taken.
bool keep_local_tail(const Options& options, const std::string& name, std::vector<char>& segment,
                     std::size_t fetched) {
    const std::string path = options.pgdata + "/pg_wal/" + name;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    std::vector<char> local(segment.size());
    std::size_t done = 0;
    while (done < local.size()) {
        const ssize_t n = ::read(fd, local.data() + done, local.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        done += static_cast<std::size_t>(n);
    }
    ::close(fd);
    if (done != local.size() || std::memcmp(local.data(), segment.data(), fetched) != 0)
        return false;
    std::memcpy(segment.data() + fetched, local.data() + fetched, segment.size() - fetched);
    return true;
}

int restore(const Options& options) {
    const auto request = parse_request(options.file_name);
    if (!request) {
        if (options.verbose)
            std::fprintf(stderr, "%s: %s: not a file the safekeepers serve\n", kProgram,
                         options.file_name.c_str());
        return 1;
    }
    const Clock::time_point deadline =
        Clock::now() +
        std::chrono::milliseconds(static_cast<long long>(options.timeout_seconds * 1000));
    std::vector<std::string> errors;
    std::vector<char> best;  // the most complete partial segment so far
    wp::Lsn best_end = 0;
    std::size_t best_length = 0;  // bytes of `best` that came from a safekeeper
    std::string best_source;
    for (const wp::SafekeeperAddress& address : options.safekeepers) {
        if (Clock::now() >= deadline) {
            errors.push_back(address.to_string() + ": not tried (--timeout)");
            continue;
        }
        wp::pg::WalFetchConnection source(
            address,
            wp::pg::WalFetchTarget{options.tenant_hex, options.timeline_hex, kProgram,
                                   options.connect_timeout_seconds, options.conninfo},
            deadline);
        if (!source.connect() || !source.identify()) {
            errors.push_back(source.name() + ": " + source.error());
            continue;
        }
        if (request->history) {
            if (request->pg_timeline > source.pg_timeline()) continue;  // not there (yet)
            const auto content = source.timeline_history(request->pg_timeline);
            if (!content) {
                if (!source.not_there()) errors.push_back(source.name() + ": " + source.error());
                continue;
            }
            std::string error;
            if (!write_file(options.target_path, content->data(), content->size(), error)) {
                std::fprintf(stderr, "%s: %s\n", kProgram, error.c_str());
                return 1;
            }
            if (options.verbose)
                std::fprintf(stderr, "%s: %s from %s\n", kProgram, request->name.c_str(),
                             source.name().c_str());
            return 0;
        }
        const std::uint32_t segsz = source.segment_size();
        const auto parsed = wp::sk::parse_wal_segment_file_name(request->name, segsz);
        if (!parsed || parsed->partial) {
            errors.push_back(source.name() + ": " + request->name + " is not a segment name for " +
                             std::to_string(segsz) + "-byte segments");
            continue;
        }
        if (parsed->pg_timeline > source.pg_timeline()) continue;
        const wp::Lsn start = wp::sk::segment_start(parsed->segno, segsz);
        if (source.commit_lsn() <= start || source.commit_lsn() <= best_end) continue;
        std::vector<char> buffer(segsz, 0);
        const wp::Lsn end = source.fetch(parsed->pg_timeline, start, buffer);
        if (!source.error().empty() && !source.not_there() && end == start)
            errors.push_back(source.name() + ": " + source.error());
        if (end > best_end) {
            best.swap(buffer);
            best_end = end;
            best_length = static_cast<std::size_t>(end - start);
            best_source = source.name();
            if (end == start + segsz) break;
        }
    }
    if (best_end != 0) {
        std::string error;
        if (best_length < best.size() && keep_local_tail(options, request->name, best, best_length))
            if (options.verbose)
                std::fprintf(stderr, "%s: %s: kept the WAL pg_wal holds beyond %s\n", kProgram,
                             request->name.c_str(), wp::format_lsn(best_end).c_str());
        if (!write_file(options.target_path, best.data(), best.size(), error)) {
            std::fprintf(stderr, "%s: %s\n", kProgram, error.c_str());
            return 1;
        }
        if (options.verbose)
            std::fprintf(stderr, "%s: %s from %s, WAL up to %s\n", kProgram, request->name.c_str(),
                         best_source.c_str(), wp::format_lsn(best_end).c_str());
        return 0;
    }
    // Not found: silent when every safekeeper answered (a standby probes for
    // files that do not exist yet all the time); otherwise say who failed.
    if (!errors.empty()) {
        std::string text;
        for (const auto& e : errors) text += (text.empty() ? "" : "; ") + e;
        std::fprintf(stderr, "%s: %s not restored: %s\n", kProgram, request->name.c_str(),
                     text.c_str());
    }
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    const Options options = parse_options(argc, argv);
    return restore(options);
}
