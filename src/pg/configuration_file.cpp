extern "C" {
#include "postgres.h"

#include "miscadmin.h"
}

#include <cstdio>
#include <cstring>
#include <string>

#include "configuration_file.h"
#include "data_file.h"

namespace wp::pg {

namespace {

constexpr const char kFileName[] = "walproposer.configuration";
constexpr const char kHeader[] = "walproposer configuration v1\n";
constexpr std::size_t kMaxFileSize = 64 * 1024;

// format_member_set writes "{...}"; the file holds the list without braces.
std::string member_list(const wp::MemberSet& set) {
    std::string text = wp::format_member_set(set);
    return text.size() >= 2 ? text.substr(1, text.size() - 2) : text;
}

}  // namespace

wp::Result<std::optional<wp::Configuration>> load_configuration() {
    const std::string path = std::string(DataDir) + "/" + kFileName;
    auto file = read_data_file(kFileName, kMaxFileSize);
    if (!file) return file.status();
    if (!*file) return std::optional<wp::Configuration>();
    const std::string& content = **file;
    const auto corrupt = [&](const std::string& why) {
        return wp::Status::error("corrupt " + path + ": " + why +
                                 " (restore it, or remove it to start again from "
                                 "walproposer.safekeepers and what the safekeepers hold)");
    };
    auto checked = checked_body(content, kHeader);
    if (!checked) return corrupt(checked.message());
    const std::string& body = *checked;

    wp::Configuration c;
    bool have_generation = false, have_term = false, have_members = false;
    std::size_t pos = std::strlen(kHeader);
    while (pos < body.size()) {
        const auto eol = body.find('\n', pos);
        if (eol == std::string::npos) return corrupt("unterminated line");
        const std::string line = body.substr(pos, eol - pos);
        pos = eol + 1;
        const auto space = line.find(' ');
        if (space == std::string::npos) return corrupt("bad line \"" + line + "\"");
        const std::string key = line.substr(0, space), value = line.substr(space + 1);
        if (key == "generation") {
            unsigned long long g = 0;
            if (std::sscanf(value.c_str(), "%llu", &g) != 1 || g == 0 || g > 0xFFFFFFFFull)
                return corrupt("bad generation");
            c.generation = static_cast<wp::Generation>(g);
            have_generation = true;
        } else if (key == "created_term") {
            unsigned long long t = 0;
            if (std::sscanf(value.c_str(), "%llu", &t) != 1) return corrupt("bad created_term");
            c.created_term = t;
            have_term = true;
        } else if (key == "members" || key == "new_members") {
            auto set = wp::parse_member_set(value);
            if (!set) return corrupt(key + ": " + set.message());
            if (key == "members") {
                c.members = std::move(*set);
                have_members = true;
            } else {
                c.new_members = std::move(*set);
            }
        } else {
            return corrupt("unknown line \"" + line + "\"");
        }
    }
    if (!have_generation || !have_term || !have_members) return corrupt("incomplete");
    wp::Status valid = wp::validate_configuration(c);
    if (!valid.ok()) return corrupt(valid.message());
    return std::optional<wp::Configuration>(std::move(c));
}

wp::Status save_configuration(const wp::Configuration& c) {
    std::string body = kHeader;
    body += "generation " + std::to_string(c.generation) + "\n";
    body += "created_term " + std::to_string(c.created_term) + "\n";
    body += "members " + member_list(c.members) + "\n";
    if (c.new_members) body += "new_members " + member_list(*c.new_members) + "\n";
    return write_data_file_durably(kFileName, checksummed_text(std::move(body)));
}

}  // namespace wp::pg
