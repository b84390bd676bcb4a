// The libpq connection options of the extension's worker and of
// pg_walproposer_sync: walproposer.safekeeper_conninfo / --conninfo parsed
// and merged with the proposer's own keywords (src/pg/safekeeper_conn.cpp,
// libpq only, no server header).
#include <catch2/catch.hpp>

#include <string>

#include "../../src/pg/safekeeper_conn.h"

using wp::pg::ConninfoPairs;
using wp::pg::parse_safekeeper_conninfo;
using wp::pg::push_conninfo;
using wp::pg::PushTarget;

namespace {

// The value `pairs` gives `keyword`, "<unset>" when it does not name it;
// fails the test when it names it twice.
std::string value_of(const ConninfoPairs& pairs, const std::string& keyword) {
    std::string value = "<unset>";
    int seen = 0;
    for (const auto& [k, v] : pairs) {
        if (k != keyword) continue;
        value = v;
        ++seen;
    }
    CHECK(seen <= 1);
    return value;
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

PushTarget target_with(ConninfoPairs extra) {
    PushTarget target;
    target.host = "sk1.example.com";
    target.port = 5454;
    target.application_name = "walproposer";
    target.tenant_hex = std::string(32, 'a');
    target.timeline_hex = std::string(32, 'b');
    target.extra_conninfo = std::move(extra);
    return target;
}

}  // namespace

TEST_CASE("safekeeper_conninfo: blank sets nothing", "[conninfo]") {
    for (const char* text : {"", "   ", " \t\n"}) {
        auto parsed = parse_safekeeper_conninfo(text);
        REQUIRE(parsed);
        CHECK(parsed->empty());
    }
}

TEST_CASE("safekeeper_conninfo: libpq keywords with their values", "[conninfo]") {
    auto parsed = parse_safekeeper_conninfo(
        "user=wp passfile=/etc/walproposer/pgpass sslmode=verify-full "
        "sslrootcert='/etc/ssl/my ca.pem' connect_timeout=5");
    REQUIRE(parsed);
    CHECK(parsed->size() == 5);
    CHECK(value_of(*parsed, "user") == "wp");
    CHECK(value_of(*parsed, "passfile") == "/etc/walproposer/pgpass");
    CHECK(value_of(*parsed, "sslmode") == "verify-full");
    CHECK(value_of(*parsed, "sslrootcert") == "/etc/ssl/my ca.pem");
    CHECK(value_of(*parsed, "connect_timeout") == "5");
    // An empty value is kept: it leaves the keyword to libpq's default.
    auto empty_user = parse_safekeeper_conninfo("user=''");
    REQUIRE(empty_user);
    CHECK(value_of(*empty_user, "user") == "");
}

TEST_CASE("safekeeper_conninfo: refuses what the proposer sets itself", "[conninfo]") {
    struct Case {
        const char* text;
        const char* keyword;
        const char* reason;
    };
    for (const Case& c : {Case{"host=evil", "host", "walproposer.safekeepers"},
                          Case{"hostaddr=10.0.0.1", "hostaddr", "walproposer.safekeepers"},
                          Case{"user=wp port=1", "port", "walproposer.safekeepers"},
                          Case{"dbname=x", "dbname", "push protocol"},
                          Case{"options='-c tenant_id=x'", "options", "walproposer.tenant_id"},
                          Case{"replication=database", "replication", "push protocol"}}) {
        INFO(c.text);
        auto parsed = parse_safekeeper_conninfo(c.text);
        REQUIRE_FALSE(parsed);
        CHECK(
            contains(parsed.message(), std::string("\"") + c.keyword + "\" cannot be set here: "));
        CHECK(contains(parsed.message(), c.reason));
    }
    // A URI is libpq's other form; its host is refused likewise.
    auto uri = parse_safekeeper_conninfo("postgresql://evil:5454/");
    REQUIRE_FALSE(uri);
    CHECK(contains(uri.message(), "cannot be set here"));
}

TEST_CASE("safekeeper_conninfo: libpq's parse errors, an unknown sslmode", "[conninfo]") {
    struct Case {
        const char* text;
        const char* message;
    };
    for (const Case& c :
         {Case{"user", "missing \"=\" after \"user\" in connection info string"},
          Case{"no_such_keyword=1", "invalid connection option \"no_such_keyword\""},
          Case{"user='unterminated", "unterminated quoted string in connection info string"},
          Case{"sslmode=verify_full", "invalid sslmode value: \"verify_full\""}}) {
        INFO(c.text);
        auto parsed = parse_safekeeper_conninfo(c.text);
        REQUIRE_FALSE(parsed);
        CHECK(parsed.message() == c.message);  // one line, no trailing newline
    }
    for (const char* mode : {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}) {
        CHECK(parse_safekeeper_conninfo(std::string("sslmode=") + mode));
    }
}

TEST_CASE("push connection: the proposer's keywords and defaults", "[conninfo]") {
    PushTarget target = target_with({});
    target.extra_options = "-c create_timeline=false";
    const ConninfoPairs pairs = push_conninfo(target);
    CHECK(value_of(pairs, "host") == "sk1.example.com");
    CHECK(value_of(pairs, "port") == "5454");
    CHECK(value_of(pairs, "dbname") == "postgres");
    CHECK(value_of(pairs, "user") == "walproposer");
    CHECK(value_of(pairs, "application_name") == "walproposer");
    CHECK(value_of(pairs, "options") == "-c tenant_id=" + std::string(32, 'a') +
                                            " -c timeline_id=" + std::string(32, 'b') +
                                            " -c create_timeline=false");
    CHECK(value_of(pairs, "keepalives") == "1");
    CHECK(value_of(pairs, "keepalives_idle") == "10");
    CHECK(value_of(pairs, "keepalives_interval") == "5");
    CHECK(value_of(pairs, "keepalives_count") == "3");
    CHECK(value_of(pairs, "sslmode") == "prefer");
    CHECK(pairs.size() == 11);
}

TEST_CASE("push connection: safekeeper_conninfo replaces defaults and adds keywords",
          "[conninfo]") {
    auto extra = parse_safekeeper_conninfo(
        "sslrootcert=/etc/ssl/ca.pem user=pusher sslmode=verify-full keepalives_idle=30 "
        "passfile=/etc/walproposer/pgpass");
    REQUIRE(extra);
    const ConninfoPairs pairs = push_conninfo(target_with(*extra));
    CHECK(value_of(pairs, "user") == "pusher");
    CHECK(value_of(pairs, "sslmode") == "verify-full");
    CHECK(value_of(pairs, "keepalives_idle") == "30");
    CHECK(value_of(pairs, "keepalives") == "1");
    CHECK(value_of(pairs, "passfile") == "/etc/walproposer/pgpass");
    CHECK(value_of(pairs, "sslrootcert") == "/etc/ssl/ca.pem");
    CHECK(value_of(pairs, "host") == "sk1.example.com");
    CHECK(pairs.size() == 13);  // the 11 of the proposer, passfile, sslrootcert
    // The defaults keep their places; new keywords follow, in their order.
    CHECK(pairs[3].first == "user");
    CHECK(pairs[11].first == "passfile");
    CHECK(pairs[12].first == "sslrootcert");
}

TEST_CASE("push connection: the proposer's own keywords always win", "[conninfo]") {
    // Not from the parser (which refuses them), but never applied either.
    const ConninfoPairs pairs = push_conninfo(target_with({{"host", "evil"},
                                                           {"port", "1"},
                                                           {"dbname", "x"},
                                                           {"options", "-c tenant_id=x"},
                                                           {"replication", "true"},
                                                           {"hostaddr", "10.6.6.6"},
                                                           {"user", "u"}}));
    CHECK(value_of(pairs, "host") == "sk1.example.com");
    CHECK(value_of(pairs, "port") == "5454");
    CHECK(value_of(pairs, "dbname") == "postgres");
    CHECK(contains(value_of(pairs, "options"), "-c tenant_id=aaaa"));
    CHECK(value_of(pairs, "replication") == "<unset>");
    CHECK(value_of(pairs, "hostaddr") == "<unset>");
    CHECK(value_of(pairs, "user") == "u");
}
