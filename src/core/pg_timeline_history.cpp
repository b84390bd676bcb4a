#include "walproposer/pg_timeline_history.h"

namespace wp {
namespace {

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

// One line without its '\n': "<tli><space><X/X>[<space><reason>]".
std::optional<PgTimelineHistoryEntry> parse_line(std::string_view line) {
    std::size_t i = 0;
    while (i < line.size() && is_space(line[i])) ++i;
    if (i == line.size() || line[i] == '#') return std::nullopt;  // blank or comment
    std::uint64_t tli = 0;
    const std::size_t digits = i;
    while (i < line.size() && line[i] >= '0' && line[i] <= '9') {
        tli = tli * 10 + static_cast<std::uint64_t>(line[i] - '0');
        if (tli > 0xFFFFFFFFu) return std::nullopt;
        ++i;
    }
    if (i == digits || i == line.size() || !is_space(line[i])) return std::nullopt;
    while (i < line.size() && is_space(line[i])) ++i;
    std::size_t end = i;
    while (end < line.size() && !is_space(line[end])) ++end;
    const auto lsn = parse_lsn(line.substr(i, end - i));
    if (!lsn) return std::nullopt;
    PgTimelineHistoryEntry e;
    e.tli = static_cast<std::uint32_t>(tli);
    e.switchpoint = *lsn;
    return e;
}

}  // namespace

std::vector<PgTimelineHistoryEntry> parse_pg_timeline_history(std::string_view content) {
    std::vector<PgTimelineHistoryEntry> entries;
    std::size_t pos = 0;
    while (pos < content.size()) {
        const std::size_t eol = content.find('\n', pos);
        const std::size_t line_end = eol == std::string_view::npos ? content.size() : eol + 1;
        const std::size_t text_end = eol == std::string_view::npos ? content.size() : eol;
        if (auto e = parse_line(content.substr(pos, text_end - pos))) {
            e->line_end = line_end;
            entries.push_back(*e);
        }
        pos = line_end;
    }
    return entries;
}

std::optional<std::pair<Lsn, std::uint32_t>> pg_timeline_switch_point(std::string_view content,
                                                                      std::uint32_t tli,
                                                                      std::uint32_t current) {
    const auto entries = parse_pg_timeline_history(content);
    for (std::size_t i = 0; i < entries.size(); ++i) {
        if (entries[i].tli != tli) continue;
        const std::uint32_t next = i + 1 < entries.size() ? entries[i + 1].tli : current;
        return std::make_pair(entries[i].switchpoint, next);
    }
    return std::nullopt;
}

std::optional<std::string> pg_timeline_history_prefix(std::string_view content,
                                                      std::uint32_t want_tli) {
    if (want_tli < 2) return std::nullopt;
    for (const auto& e : parse_pg_timeline_history(content))
        if (e.tli == want_tli - 1) return std::string(content.substr(0, e.line_end));
    return std::nullopt;
}

}  // namespace wp
