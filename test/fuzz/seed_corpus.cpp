// Writes the seed corpora of the fuzz targets (test/fuzz/corpus/<target>/):
// one valid input of every kind each target reads, so that the fuzzers start
// from deep inside the formats. The corpora are committed; rerun with
// `make fuzz-seeds` when a format changes.
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "pull_timeline/http_format.h"
#include "retention/slot_store.h"
#include "storage/control_file.h"
#include "support/wal_generator.h"
#include "walproposer/configuration.h"
#include "walproposer/messages.h"

namespace {

std::string g_root;

void put(const std::string& target, const std::string& name, const std::string& bytes) {
    const std::string dir = g_root + "/" + target;
    ::mkdir(dir.c_str(), 0755);
    std::ofstream(dir + "/" + name, std::ios::binary) << bytes;
}

std::string str(const std::vector<std::uint8_t>& v) { return std::string(v.begin(), v.end()); }

// Selector byte + body, for the targets that dispatch on their first byte.
std::string with(char selector, const std::string& body) { return std::string(1, selector) + body; }

std::string be32(std::uint32_t v) {
    return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
            static_cast<char>(v)};
}

std::string frame(char type, const std::string& payload) {
    return std::string(1, type) + be32(static_cast<std::uint32_t>(payload.size() + 4)) + payload;
}

void messages() {
    wp::ProposerGreeting g;
    g.system_id = 7300000000000000001ull;
    g.pg_version = 150004;
    g.wal_segment_size = 16u << 20;
    g.tenant_id[0] = 1;
    g.timeline_id[0] = 2;
    g.pg_timeline = 2;
    g.pg_timeline_history = "1\t0/3000000\tno recovery target specified\n";
    wp::AcceptorGreeting ag;
    ag.node_id = 1;
    ag.term = 3;
    ag.flush_lsn = 0x3000100;
    wp::VoteResponse v;
    v.term = 4;
    v.vote_granted = true;
    v.flush_lsn = v.tail_lsn = 0x3000100;
    v.term_history = {{1, 0x3000000}, {3, 0x3000080}};
    wp::ProposerElected e;
    e.term = 4;
    e.start_streaming_lsn = 0x3000100;
    e.term_history = {{1, 0x3000000}, {4, 0x3000100}};
    wp::AppendRequest a;
    a.term = 4;
    a.begin_lsn = 0x3000100;
    a.end_lsn = 0x3000110;
    a.commit_lsn = 0x3000100;
    a.wal.assign(16, 0x5A);
    wp::AppendResponse r;
    r.term = 4;
    r.flush_lsn = 0x3000110;
    wp::WalReadRequest rr{4, 0x3000000, 0x3000100};
    wp::WalReadResponse rs;
    rs.term = 4;
    rs.begin_lsn = 0x3000000;
    rs.wal.assign(8, 1);
    wp::Configuration joint;
    joint.generation = 3;
    joint.created_term = 4;
    joint.members = {{1, {"127.0.0.1", 5454}}, {2, {"127.0.0.1", 5455}}, {3, {"127.0.0.1", 5456}}};
    joint.new_members = wp::MemberSet{{1, {"127.0.0.1", 5454}}, {2, {"127.0.0.1", 5455}},
                                      {4, {"sk4.example", 5454}}};
    ag.configuration = joint;
    e.configuration = joint;
    wp::ConfigurationUpdate u;
    u.term = 4;
    u.configuration = joint;
    const std::vector<wp::Message> all = {g, ag, wp::VoteRequest{4, 2, joint.key()}, v, e, a, r, rr, rs, u};
    for (const wp::Message& m : all) put("fuzz_messages", wp::message_name(m), str(wp::encode(m)));
}

void text_formats() {
    put("fuzz_text_formats", "safekeepers", with(0, "127.0.0.1:5454, sk2.example:5455,[::1]:6000"));
    put("fuzz_text_formats", "history",
        with(1, "# comment\n1\t0/3000000\tno recovery target specified\n\n2\t0/5000A28\tbefore\n"));
    for (const char* q :
         {"IDENTIFY_SYSTEM", "TIMELINE_HISTORY 2", "START_REPLICATION SLOT s PHYSICAL 0/3000000 TIMELINE 1",
          "READ_REPLICATION_SLOT s", "SHOW wal_segment_size", "START_WAL_PUSH",
          "CREATE_REPLICATION_SLOT s PHYSICAL RESERVE_WAL", "DROP_REPLICATION_SLOT s WAIT"})
        put("fuzz_text_formats", std::string("command_") + std::to_string(std::string(q).size()),
            with(2, q));
    put("fuzz_text_formats", "id", with(3, "0123456789abcdef0123456789ABCDEF"));
    put("fuzz_text_formats", "members", with(4, "1=127.0.0.1:5454, 2=sk2.example:5455,3=[::1]:6000"));
    put("fuzz_text_formats", "term_history",
        with(5, "pg_timeline 2\nterm 1 0/3000000\nterm 4 0/3000100\n"));
    const std::string secret =
        "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
    put("fuzz_text_formats", "roles",
        with(6, "# name perms tenants secret\nwalproposer push * " + secret +
                    "\nreplica read 0123456789abcdef0123456789abcdef,fedcba9876543210fedcba9876543210 " +
                    secret + "  # two\nops admin,read * " + secret + "\n"));
    put("fuzz_text_formats", "secret", with(7, secret));
    wp::sk::PullSnapshot snapshot;
    snapshot.tenant_id[0] = 0x11;
    snapshot.timeline_id[0] = 0x22;
    snapshot.source_node = 3;
    snapshot.flush_lsn = 0x2000100;
    snapshot.wal_term = 4;
    snapshot.timeline_start_lsn = 0x1000000;
    snapshot.control_file = std::string("\x01\x02\xff", 3);
    snapshot.segments = {{"000000010000000000000001", 0x1000000, 0x2000000},
                         {"000000010000000000000002.partial", 0x2000000, 0x2000100}};
    put("fuzz_text_formats", "snapshot", with(9, wp::sk::snapshot_to_json(snapshot)));
    put("fuzz_text_formats", "pull_body",
        with(10, R"({"source": "https://127.0.0.1:7676", "max_bytes_per_second": 1000000, "timeout_seconds": 30})"));
    put("fuzz_text_formats", "wal_params", with(11, "0/1000000\n0/1100000\n0/2000100\n4"));
    put("fuzz_text_formats", "http",
        with(8, "DELETE\n/v1/tenant/0123456789abcdef0123456789abcdef/timeline/"
                "0123456789abcdef0123456789abcdef\nBasic b3BzOnB3\n"));
}

void storage_formats() {
    wp::sk::ControlFileData c;
    c.acceptor.term = 4;
    c.acceptor.term_history = {{1, 0x3000000}, {4, 0x3000100}};
    c.acceptor.commit_lsn = 0x3000100;
    c.acceptor.truncate_lsn = 0x3000100;
    c.acceptor.identity.system_id = 7300000000000000001ull;
    c.acceptor.identity.wal_segment_size = 16u << 20;
    c.acceptor.identity.pg_timeline = 2;
    c.acceptor.timeline_start_lsn = 0x3000000;
    c.acceptor.min_pg_timeline = 2;
    c.pg_timeline_history = "1\t0/3000000\tno recovery target specified\n";
    c.wal_scan_start_lsn = 0x3000000;
    put("fuzz_storage_formats", "control", with(0, wp::sk::encode_control_file(c)));
    wp::Id128 id{};
    id[0] = 0x22;
    put("fuzz_storage_formats", "tombstone", with(1, wp::sk::encode_tombstone(id, {4, 2, {}})));
    wp::Configuration config;
    config.generation = 2;
    config.created_term = 4;
    config.members = {{1, {"127.0.0.1", 5454}}, {2, {"sk2.example", 5454}}};
    put("fuzz_storage_formats", "tombstone-configuration",
        with(1, wp::sk::encode_tombstone(id, {4, 2, config})));
    wp::sk::WalGenerator gen(7300000000000000001ull, 1u << 20, 1, 3u << 20);
    std::vector<std::uint8_t> wal = gen.append_record(100);
    for (std::uint32_t len : {24u, 9000u, 30u}) {
        auto more = gen.append_record(len);
        wal.insert(wal.end(), more.begin(), more.end());
    }
    put("fuzz_storage_formats", "wal", with(2, str(wal)));
    wp::sk::SlotData slot;
    slot.name = "receiver_1";
    slot.restart_lsn = 0x3000000;
    put("fuzz_storage_formats", "slots", with(3, wp::sk::encode_slot_file({slot})));
}

void pg_wire() {
    std::string params;
    for (const char* kv : {"user", "postgres", "replication", "true", "options",
                           "-c tenant_id=01 -c timeline_id=02", "application_name", "fuzz"})
        params += std::string(kv) + '\0';
    params += '\0';
    const std::string startup = be32(static_cast<std::uint32_t>(8 + params.size())) + be32(196608) + params;
    const std::string ssl = be32(8) + be32(80877103);
    put("fuzz_pg_wire", "startup_query",
        ssl + startup + frame('Q', std::string("IDENTIFY_SYSTEM") + '\0') +
            frame('d', "r" + std::string(33, '\0')) + frame('X', ""));
    const std::string mechanism = std::string("SCRAM-SHA-256") + '\0';
    const std::string client_first = "n,,n=,r=rOprNGfwEbeRWgbNEkqO";
    put("fuzz_pg_wire", "startup_scram",
        startup + frame('p', mechanism + be32(static_cast<std::uint32_t>(client_first.size())) + client_first) +
            frame('p', "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                       "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=") +
            frame('Q', std::string("IDENTIFY_SYSTEM") + '\0') + frame('X', ""));
    put("fuzz_pg_wire", "startup_push",
        startup + frame('Q', std::string("START_WAL_PUSH") + '\0') + frame('d', std::string(40, 'g')) +
            frame('c', ""));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s CORPUS_ROOT\n", argv[0]);
        return 2;
    }
    g_root = argv[1];
    ::mkdir(g_root.c_str(), 0755);
    messages();
    text_formats();
    storage_formats();
    pg_wire();
    return 0;
}
