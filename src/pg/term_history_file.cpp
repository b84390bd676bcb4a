extern "C" {
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "miscadmin.h"
#include "port/pg_crc32c.h"
#include "storage/fd.h"
}

#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <string>

#include "cxx_guard.h"
#include "term_history_file.h"

namespace wp::pg {

namespace {

constexpr const char kFileName[] = "walproposer.term_history";
constexpr const char kTempName[] = "walproposer.term_history.tmp";
constexpr const char kHeader[] = "walproposer term history v1\n";
constexpr std::size_t kMaxFileSize = 1 << 20;

std::uint32_t crc_of(const std::string& text) {
    pg_crc32c crc;
    INIT_CRC32C(crc);
    COMP_CRC32C(crc, text.data(), text.size());
    FIN_CRC32C(crc);
    return crc;
}

struct RenameArgs {
    const char* from;
    const char* to;
    int result;
};

void durable_rename_guarded(void* arg) {
    auto* a = static_cast<RenameArgs*>(arg);
    a->result = durable_rename(a->from, a->to, LOG);
}

}  // namespace

wp::Result<wp::TermHistory> load_term_history(std::uint32_t pg_timeline) {
    const std::string path = std::string(DataDir) + "/" + kFileName;
    const int fd = open(path.c_str(), O_RDONLY | PG_BINARY);
    if (fd < 0) {
        if (errno == ENOENT) return wp::TermHistory{};
        return wp::Result<wp::TermHistory>::error("cannot open " + path + ": " +
                                                  std::strerror(errno));
    }
    std::string content;
    char buffer[8192];
    for (;;) {
        const ssize_t n = read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int err = errno;
            close(fd);
            return wp::Result<wp::TermHistory>::error("cannot read " + path + ": " +
                                                      std::strerror(err));
        }
        if (n == 0) break;
        content.append(buffer, static_cast<std::size_t>(n));
        if (content.size() > kMaxFileSize) break;
    }
    close(fd);
    const auto corrupt = [&](const char* why) {
        return wp::Result<wp::TermHistory>::error("corrupt " + path + ": " + why +
                                                  " (move it away only if this primary's WAL "
                                                  "is known to match the safekeepers')");
    };
    const auto crc_pos = content.rfind("crc32c ");
    if (content.compare(0, std::strlen(kHeader), kHeader) != 0) return corrupt("bad header");
    if (crc_pos == std::string::npos) return corrupt("no checksum line");
    unsigned stored_crc = 0;
    if (std::sscanf(content.c_str() + crc_pos, "crc32c %8x\n", &stored_crc) != 1)
        return corrupt("bad checksum line");
    const std::string body = content.substr(0, crc_pos);
    if (crc_of(body) != stored_crc) return corrupt("checksum mismatch");

    wp::TermHistory history;
    unsigned file_timeline = 0;
    std::size_t pos = std::strlen(kHeader);
    bool have_timeline = false;
    while (pos < body.size()) {
        const auto eol = body.find('\n', pos);
        if (eol == std::string::npos) return corrupt("unterminated line");
        const std::string line = body.substr(pos, eol - pos);
        pos = eol + 1;
        unsigned long long term = 0;
        unsigned hi = 0, lo = 0;
        if (!have_timeline) {
            if (std::sscanf(line.c_str(), "pg_timeline %u", &file_timeline) != 1)
                return corrupt("missing pg_timeline line");
            have_timeline = true;
        } else if (std::sscanf(line.c_str(), "term %llu %X/%X", &term, &hi, &lo) == 3) {
            history.push_back({term, (static_cast<wp::Lsn>(hi) << 32) | lo});
        } else {
            return corrupt("bad line");
        }
    }
    if (!wp::is_well_formed(history)) return corrupt("history is not well formed");
    if (file_timeline != pg_timeline) return wp::TermHistory{};
    return history;
}

wp::Status save_term_history(const wp::TermHistory& history, std::uint32_t pg_timeline) {
    std::string body = kHeader;
    body += "pg_timeline " + std::to_string(pg_timeline) + "\n";
    for (const auto& entry : history)
        body += "term " + std::to_string(entry.term) + " " + wp::format_lsn(entry.lsn) + "\n";
    char crc_line[32];
    snprintf(crc_line, sizeof crc_line, "crc32c %08x\n", crc_of(body));
    body += crc_line;

    const std::string temp_path = std::string(DataDir) + "/" + kTempName;
    const std::string final_path = std::string(DataDir) + "/" + kFileName;
    const int fd = open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY, 0600);
    if (fd < 0)
        return wp::Status::error("cannot create " + temp_path + ": " + std::strerror(errno));
    std::size_t written = 0;
    while (written < body.size()) {
        const ssize_t n = write(fd, body.data() + written, body.size() - written);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const int err = n < 0 ? errno : ENOSPC;
            close(fd);
            return wp::Status::error("cannot write " + temp_path + ": " + std::strerror(err));
        }
        written += static_cast<std::size_t>(n);
    }
    if (pg_fsync(fd) != 0) {
        const int err = errno;
        close(fd);
        return wp::Status::error("cannot fsync " + temp_path + ": " + std::strerror(err));
    }
    close(fd);
    // durable_rename: fsync the file, rename, fsync the directory.
    RenameArgs args{temp_path.c_str(), final_path.c_str(), -1};
    char errbuf[kErrorBufferSize];
    if (!pg_guarded_call(durable_rename_guarded, &args, errbuf, sizeof errbuf))
        return wp::Status::error(std::string("cannot rename term history file: ") + errbuf);
    if (args.result != 0)
        return wp::Status::error("cannot rename " + temp_path + " (see the server log)");
    return wp::Status();
}

}  // namespace wp::pg
