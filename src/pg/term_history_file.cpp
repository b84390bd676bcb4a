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
    auto parsed = wp::parse_term_history_body(std::string_view(*checked).substr(std::strlen(kHeader)));
    if (!parsed) return corrupt(parsed.message().c_str());
    if (parsed->pg_timeline != pg_timeline) return wp::TermHistory{};
    return std::move(parsed->history);
}

wp::Status save_term_history(const wp::TermHistory& history, std::uint32_t pg_timeline) {
    const std::string body =
        kHeader + wp::format_term_history_body(wp::TermHistoryFileBody{pg_timeline, history});
    return write_data_file_durably(kFileName, checksummed_text(std::move(body)));
}

}  // namespace wp::pg
