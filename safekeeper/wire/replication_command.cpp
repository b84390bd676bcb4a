#include "wire/replication_command.h"

#include <cctype>
#include <vector>

namespace wp::sk {
namespace {

struct Token {
    std::string text;     // identifiers folded to lower case; quoted kept as is
    bool quoted = false;  // was a "..." identifier
};

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// Splits on whitespace; "..." is one token. False on an unterminated quote.
bool tokenize(const std::string& q, std::vector<Token>& out, std::string& error) {
    std::size_t i = 0;
    while (i < q.size()) {
        const unsigned char c = static_cast<unsigned char>(q[i]);
        if (std::isspace(c) || c == ';') {
            ++i;
            continue;
        }
        Token t;
        if (c == '"') {
            t.quoted = true;
            ++i;
            bool closed = false;
            while (i < q.size()) {
                if (q[i] == '"') {
                    if (i + 1 < q.size() && q[i + 1] == '"') {
                        t.text.push_back('"');
                        i += 2;
                        continue;
                    }
                    ++i;
                    closed = true;
                    break;
                }
                t.text.push_back(q[i++]);
            }
            if (!closed) {
                error = "unterminated quoted identifier";
                return false;
            }
            if (t.text.empty()) {
                error = "zero-length delimited identifier";
                return false;
            }
        } else if (c == '(' || c == ')' || c == ',') {
            t.text.push_back(q[i++]);  // option list punctuation: a token of its own
        } else {
            while (i < q.size() && !std::isspace(static_cast<unsigned char>(q[i])) && q[i] != ';' &&
                   q[i] != '"' && q[i] != '(' && q[i] != ')' && q[i] != ',')
                t.text.push_back(q[i++]);
        }
        out.push_back(std::move(t));
    }
    return true;
}

bool is_keyword(const Token& t, const char* kw) {
    return !t.quoted && lower(t.text) == kw;
}

std::optional<std::uint32_t> parse_u32(const std::string& s) {
    if (s.empty() || s.size() > 10) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (v > 0xFFFFFFFFull) return std::nullopt;
    return static_cast<std::uint32_t>(v);
}

bool valid_identifier(const Token& t) {
    if (t.quoted) return true;
    if (t.text.empty()) return false;
    for (char c : t.text) {
        const unsigned char u = static_cast<unsigned char>(c);
        if (!(std::isalnum(u) || c == '_' || u >= 0x80)) return false;
    }
    return !std::isdigit(static_cast<unsigned char>(t.text[0]));
}

std::string name_of(const Token& t) {
    return t.quoted ? t.text : lower(t.text);
}

// A boolean option value: true/false/on/off/1/0/yes/no, optionally in
// single quotes.
std::optional<bool> parse_bool_value(std::string v) {
    if (v.size() >= 2 && v.front() == '\'' && v.back() == '\'') v = v.substr(1, v.size() - 2);
    v = lower(v);
    if (v == "true" || v == "on" || v == "1" || v == "yes") return true;
    if (v == "false" || v == "off" || v == "0" || v == "no") return false;
    return std::nullopt;
}

// CREATE_REPLICATION_SLOT options after PHYSICAL, from tok[i]: the legacy
// RESERVE_WAL keyword or a parenthesized list. Empty string: fine.
std::string parse_create_options(const std::vector<Token>& tok, std::size_t i,
                                 ReplicationCommand& c) {
    if (i == tok.size()) return "";
    if (is_keyword(tok[i], "reserve_wal") && i + 1 == tok.size()) {
        c.reserve_wal = true;
        return "";
    }
    if (tok[i].quoted || tok[i].text != "(" || tok.back().quoted || tok.back().text != ")")
        return "syntax error at or near \"" + tok[i].text + "\" in CREATE_REPLICATION_SLOT";
    ++i;
    const std::size_t end = tok.size() - 1;
    while (i < end) {
        const std::string opt = lower(tok[i].text);
        ++i;
        std::optional<bool> value = true;
        if (i < end && tok[i].text != ",") value = parse_bool_value(tok[i++].text);
        if (opt == "reserve_wal") {
            if (!value) return "reserve_wal requires a Boolean value";
            c.reserve_wal = *value;
        } else {
            return "unrecognized option \"" + opt + "\" for a physical replication slot";
        }
        if (i < end) {
            if (tok[i].text != ",") return "syntax error at or near \"" + tok[i].text + "\"";
            ++i;
        }
    }
    return "";
}

}  // namespace

ReplicationCommandParse parse_replication_command(const std::string& query) {
    ReplicationCommandParse r;
    std::vector<Token> tok;
    std::string error;
    if (!tokenize(query, tok, error)) {
        // Only an error if it would have been one of our commands.
        std::string head = lower(query.substr(0, query.find_first_of(" \t\r\n")));
        if (head == "start_replication" || head == "read_replication_slot" ||
            head == "create_replication_slot" || head == "drop_replication_slot")
            r.error = error;
        return r;
    }
    if (tok.empty() || tok[0].quoted) return r;
    const std::string cmd = lower(tok[0].text);
    auto fail = [&](std::string msg) {
        r.command = ReplicationCommand{};
        r.error = std::move(msg);
        return r;
    };
    ReplicationCommand& c = r.command;
    if (cmd == "identify_system") {
        if (tok.size() != 1) return fail("syntax error: IDENTIFY_SYSTEM takes no arguments");
        c.kind = ReplicationCommandKind::kIdentifySystem;
    } else if (cmd == "timeline_history") {
        if (tok.size() != 2) return fail("syntax error: expected TIMELINE_HISTORY <timeline>");
        auto tli = parse_u32(tok[1].text);
        if (tok[1].quoted || !tli || *tli == 0)
            return fail("syntax error: invalid timeline \"" + tok[1].text + "\"");
        c.kind = ReplicationCommandKind::kTimelineHistory;
        c.timeline = *tli;
    } else if (cmd == "read_replication_slot") {
        if (tok.size() != 2 || !valid_identifier(tok[1]))
            return fail("syntax error: expected READ_REPLICATION_SLOT <slot name>");
        c.kind = ReplicationCommandKind::kReadReplicationSlot;
        c.slot_name = name_of(tok[1]);
    } else if (cmd == "create_replication_slot") {
        if (tok.size() < 3 || !valid_identifier(tok[1]))
            return fail("syntax error: expected CREATE_REPLICATION_SLOT <slot name> PHYSICAL");
        c.slot_name = name_of(tok[1]);
        std::size_t i = 2;
        if (is_keyword(tok[i], "temporary")) {
            c.temporary = true;
            ++i;
        }
        if (i < tok.size() && is_keyword(tok[i], "logical"))
            return fail("logical replication is not supported by the safekeeper");
        if (i >= tok.size() || !is_keyword(tok[i], "physical"))
            return fail("syntax error: expected PHYSICAL in CREATE_REPLICATION_SLOT");
        std::string err = parse_create_options(tok, i + 1, c);
        if (!err.empty()) return fail(err);
        c.kind = ReplicationCommandKind::kCreateReplicationSlot;
    } else if (cmd == "drop_replication_slot") {
        if (tok.size() < 2 || tok.size() > 3 || !valid_identifier(tok[1]) ||
            (tok.size() == 3 && !is_keyword(tok[2], "wait")))
            return fail("syntax error: expected DROP_REPLICATION_SLOT <slot name> [WAIT]");
        c.slot_name = name_of(tok[1]);
        c.wait = tok.size() == 3;
        c.kind = ReplicationCommandKind::kDropReplicationSlot;
    } else if (cmd == "show") {
        if (tok.size() != 2 || !valid_identifier(tok[1]))
            return fail("syntax error: expected SHOW <parameter>");
        c.kind = ReplicationCommandKind::kShow;
        c.show_name = lower(tok[1].text);
    } else if (cmd == "start_replication") {
        std::size_t i = 1;
        if (i < tok.size() && is_keyword(tok[i], "slot")) {
            if (i + 1 >= tok.size() || !valid_identifier(tok[i + 1]))
                return fail("syntax error: expected a slot name after SLOT");
            c.slot_name = name_of(tok[i + 1]);
            i += 2;
        }
        if (i < tok.size() && is_keyword(tok[i], "logical"))
            return fail("logical replication is not supported by the safekeeper");
        if (i < tok.size() && is_keyword(tok[i], "physical")) ++i;
        if (i >= tok.size())
            return fail("syntax error: START_REPLICATION needs a start position X/X");
        auto lsn = parse_lsn(tok[i].text);
        if (tok[i].quoted || !lsn)
            return fail("syntax error: invalid start position \"" + tok[i].text + "\"");
        c.start_lsn = *lsn;
        ++i;
        if (i < tok.size() && is_keyword(tok[i], "timeline")) {
            if (i + 1 >= tok.size())
                return fail("syntax error: expected a timeline after TIMELINE");
            auto tli = parse_u32(tok[i + 1].text);
            if (tok[i + 1].quoted || !tli || *tli == 0)
                return fail("syntax error: invalid timeline \"" + tok[i + 1].text + "\"");
            c.timeline = *tli;
            i += 2;
        }
        if (i != tok.size())
            return fail("syntax error at or near \"" + tok[i].text + "\" in START_REPLICATION");
        c.kind = ReplicationCommandKind::kStartReplication;
    }
    return r;
}

}  // namespace wp::sk
