extern "C" {
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "miscadmin.h"
#include "port/pg_crc32c.h"
#include "storage/fd.h"
}

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "cxx_guard.h"
#include "data_file.h"

namespace wp::pg {

namespace {

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

std::uint32_t data_file_crc(const std::string& text) {
    pg_crc32c crc;
    INIT_CRC32C(crc);
    COMP_CRC32C(crc, text.data(), text.size());
    FIN_CRC32C(crc);
    return crc;
}

std::string checksummed_text(std::string body) {
    char crc_line[32];
    snprintf(crc_line, sizeof crc_line, "crc32c %08x\n", data_file_crc(body));
    return body + crc_line;
}

wp::Result<std::string> checked_body(const std::string& content, const char* header) {
    if (content.compare(0, std::strlen(header), header) != 0) return wp::Status::error("bad header");
    const auto crc_pos = content.rfind("crc32c ");
    if (crc_pos == std::string::npos) return wp::Status::error("no checksum line");
    unsigned stored_crc = 0;
    if (std::sscanf(content.c_str() + crc_pos, "crc32c %8x\n", &stored_crc) != 1)
        return wp::Status::error("bad checksum line");
    std::string body = content.substr(0, crc_pos);
    if (data_file_crc(body) != stored_crc) return wp::Status::error("checksum mismatch");
    return body;
}

wp::Result<std::optional<std::string>> read_data_file(const char* name, std::size_t max_size) {
    const std::string path = std::string(DataDir) + "/" + name;
    const int fd = open(path.c_str(), O_RDONLY | PG_BINARY);
    if (fd < 0) {
        if (errno == ENOENT) return std::optional<std::string>();
        return wp::Status::error("cannot open " + path + ": " + std::strerror(errno));
    }
    std::string content;
    char buffer[8192];
    for (;;) {
        const ssize_t n = read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int err = errno;
            close(fd);
            return wp::Status::error("cannot read " + path + ": " + std::strerror(err));
        }
        if (n == 0) break;
        content.append(buffer, static_cast<std::size_t>(n));
        if (content.size() > max_size) {
            close(fd);
            return wp::Status::error(path + " is larger than " + std::to_string(max_size) + " bytes");
        }
    }
    close(fd);
    return std::optional<std::string>(std::move(content));
}

wp::Status write_data_file_durably(const char* name, const std::string& content) {
    const std::string final_path = std::string(DataDir) + "/" + name;
    const std::string temp_path = final_path + ".tmp";
    const int fd = open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY, 0600);
    if (fd < 0)
        return wp::Status::error("cannot create " + temp_path + ": " + std::strerror(errno));
    std::size_t written = 0;
    while (written < content.size()) {
        const ssize_t n = write(fd, content.data() + written, content.size() - written);
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
        return wp::Status::error("cannot rename " + temp_path + ": " + errbuf);
    if (args.result != 0)
        return wp::Status::error("cannot rename " + temp_path + " (see the server log)");
    return wp::Status();
}

}  // namespace wp::pg
