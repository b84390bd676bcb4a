#include "pull_timeline/http_format.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdlib>

namespace wp::sk {
namespace {

std::string to_hex(const std::string& bytes) {
    static const char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char c : bytes) {
        out.push_back(kDigits[c >> 4]);
        out.push_back(kDigits[c & 15]);
    }
    return out;
}

Result<std::string> from_hex(const std::string& hex) {
    if (hex.size() % 2 != 0) return Status::invalid("odd number of hex digits");
    auto digit = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::string out;
    out.reserve(hex.size() / 2);
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        const int hi = digit(hex[i]), lo = digit(hex[i + 1]);
        if (hi < 0 || lo < 0) return Status::invalid("not a hex digit in control_file");
        out.push_back(static_cast<char>(hi * 16 + lo));
    }
    return out;
}

}  // namespace

std::string snapshot_to_json(const PullSnapshot& s) {
    nlohmann::json segments = nlohmann::json::array();
    for (const SnapshotSegment& seg : s.segments)
        segments.push_back({{"name", seg.file_name},
                            {"start_lsn", format_lsn(seg.start_lsn)},
                            {"end_lsn", format_lsn(seg.end_lsn)}});
    return nlohmann::json{{"tenant_id", format_id(s.tenant_id)},
                          {"timeline_id", format_id(s.timeline_id)},
                          {"source_node_id", s.source_node},
                          {"flush_lsn", format_lsn(s.flush_lsn)},
                          {"wal_term", s.wal_term},
                          {"timeline_start_lsn", format_lsn(s.timeline_start_lsn)},
                          {"control_file", to_hex(s.control_file)},
                          {"segments", segments}}
        .dump();
}

Result<PullSnapshot> snapshot_from_json(const std::string& text) {
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return Status::invalid("snapshot is not a JSON object");
    auto str = [&](const char* key) -> Result<std::string> {
        auto it = j.find(key);
        if (it == j.end() || !it->is_string())
            return Status::invalid(std::string("snapshot: missing string field '") + key + "'");
        return it->get<std::string>();
    };
    auto lsn = [&](const nlohmann::json& obj, const char* key) -> Result<Lsn> {
        auto it = obj.find(key);
        if (it == obj.end() || !it->is_string())
            return Status::invalid(std::string("snapshot: missing LSN field '") + key + "'");
        auto v = parse_lsn(it->get<std::string>());
        if (!v) return Status::invalid(std::string("snapshot: '") + key + "' is not an LSN");
        return *v;
    };
    auto uint = [&](const char* key) -> Result<std::uint64_t> {
        auto it = j.find(key);
        if (it == j.end() || !it->is_number_unsigned())
            return Status::invalid(std::string("snapshot: missing number field '") + key + "'");
        return it->get<std::uint64_t>();
    };
    PullSnapshot s;
    auto tenant = str("tenant_id");
    if (!tenant) return tenant.status();
    auto timeline = str("timeline_id");
    if (!timeline) return timeline.status();
    auto tenant_id = parse_id(*tenant);
    auto timeline_id = parse_id(*timeline);
    if (!tenant_id || !timeline_id) return Status::invalid("snapshot: ids must be 32 hex digits");
    s.tenant_id = *tenant_id;
    s.timeline_id = *timeline_id;
    auto node = uint("source_node_id");
    if (!node) return node.status();
    s.source_node = *node;
    auto flush = lsn(j, "flush_lsn");
    if (!flush) return flush.status();
    s.flush_lsn = *flush;
    auto term = uint("wal_term");
    if (!term) return term.status();
    s.wal_term = *term;
    auto start = lsn(j, "timeline_start_lsn");
    if (!start) return start.status();
    s.timeline_start_lsn = *start;
    auto control = str("control_file");
    if (!control) return control.status();
    auto bytes = from_hex(*control);
    if (!bytes) return bytes.status().with_context("snapshot");
    s.control_file = std::move(*bytes);
    auto segs = j.find("segments");
    if (segs == j.end() || !segs->is_array())
        return Status::invalid("snapshot: missing array 'segments'");
    for (const nlohmann::json& e : *segs) {
        if (!e.is_object() || !e.contains("name") || !e["name"].is_string())
            return Status::invalid("snapshot: a segment has no name");
        SnapshotSegment seg;
        seg.file_name = e["name"].get<std::string>();
        auto b = lsn(e, "start_lsn");
        if (!b) return b.status();
        auto en = lsn(e, "end_lsn");
        if (!en) return en.status();
        seg.start_lsn = *b;
        seg.end_lsn = *en;
        s.segments.push_back(seg);
    }
    return s;
}

Result<PullRequestBody> parse_pull_request_body(const std::string& body) {
    const nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("source") || !j["source"].is_string())
        return Status::invalid(
            "body must be a JSON object with \"source\": the source safekeeper's HTTP address "
            "(http[s]://HOST:PORT)");
    PullRequestBody parsed;
    parsed.source = j["source"].get<std::string>();
    if (j.contains("max_bytes_per_second")) {
        if (!j["max_bytes_per_second"].is_number_unsigned())
            return Status::invalid("max_bytes_per_second must be a non-negative integer");
        parsed.max_bytes_per_second = j["max_bytes_per_second"].get<std::uint64_t>();
    }
    if (j.contains("timeout_seconds")) {
        if (!j["timeout_seconds"].is_number_unsigned() ||
            j["timeout_seconds"].get<std::uint64_t>() == 0 ||
            j["timeout_seconds"].get<std::uint64_t>() > 7 * 24 * 3600)
            return Status::invalid("timeout_seconds must be a positive integer (at most a week)");
        parsed.timeout_seconds = j["timeout_seconds"].get<std::uint64_t>();
    }
    return parsed;
}

Result<WalReadParams> parse_wal_read_params(const std::optional<std::string>& start,
                                            const std::optional<std::string>& end,
                                            const std::optional<std::string>& flush,
                                            const std::optional<std::string>& wal_term) {
    const auto lsn = [](const std::optional<std::string>& text) -> std::optional<Lsn> {
        return text ? parse_lsn(*text) : std::nullopt;
    };
    WalReadParams params;
    const auto s = lsn(start), e = lsn(end), f = lsn(flush);
    bool term_ok = wal_term && !wal_term->empty() && wal_term->size() <= 20;
    if (term_ok) {
        for (char c : *wal_term) term_ok = term_ok && c >= '0' && c <= '9';
        if (term_ok) {
            errno = 0;
            params.wal_term = std::strtoull(wal_term->c_str(), nullptr, 10);
            term_ok = errno == 0;
        }
    }
    if (!s || !e || !f || !term_ok)
        return Status::invalid("parameters start_lsn, end_lsn, flush_lsn (X/X) and wal_term "
                               "(a number) are required");
    params.start = *s;
    params.end = *e;
    params.flush = *f;
    return params;
}

}  // namespace wp::sk
