extern "C" {
#include "postgres.h"

#include "miscadmin.h"
}

#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <string>

#include "data_file.h"
#include "term_history_file.h"

namespace wp::pg {

namespace {

constexpr const char kFileName[] = "walproposer.term_history";
constexpr const char kHeader[] = "walproposer term history v1\n";
constexpr std::size_t kMaxFileSize = 1 << 20;

}  // namespace

wp::Result<wp::TermHistory> load_term_history(std::uint32_t pg_timeline) {
    const std::string path = std::string(DataDir) + "/" + kFileName;
    auto file = read_data_file(kFileName, kMaxFileSize);
    if (!file) return file.status();
    if (!*file) return wp::TermHistory{};
    const std::string& content = **file;
    const auto corrupt = [&](const char* why) {
        return wp::Result<wp::TermHistory>::error("corrupt " + path + ": " + why +
                                                  " (move it away only if this primary's WAL "
                                                  "is known to match the safekeepers')");
    };
    auto checked = checked_body(content, kHeader);
    if (!checked) return corrupt(checked.message().c_str());
    const std::string& body = *checked;

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
    return write_data_file_durably(kFileName, checksummed_text(std::move(body)));
}

}  // namespace wp::pg
