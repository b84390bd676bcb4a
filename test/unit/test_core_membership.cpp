// Membership in the core: the quorum rules of (joint) configurations, the
// acceptor's refusal of stale configurations, and a proposer driving a
// change C -> joint -> C with real Acceptors (docs/consensus.md,
// "Membership change").
#include <catch2/catch.hpp>

#include <deque>
#include <memory>

#include "test_core_helpers.h"
#include "walproposer/acceptor.h"
#include "walproposer/acceptor_session.h"
#include "walproposer/configuration.h"
#include "walproposer/proposer.h"

using namespace wp;
using wp::testing::MemoryWal;
using wp::testing::MemoryAcceptorStorage;

namespace {

Member m(NodeId id) { return Member{id, SafekeeperAddress{"sk" + std::to_string(id), 5454}}; }

MemberSet set_of(std::initializer_list<NodeId> ids) {
    MemberSet s;
    for (NodeId id : ids) s.push_back(m(id));
    return s;
}

Configuration config(Generation g, Term t, std::initializer_list<NodeId> members) {
    Configuration c;
    c.generation = g;
    c.created_term = t;
    c.members = set_of(members);
    return c;
}

Configuration joint(Generation g, Term t, std::initializer_list<NodeId> old_set,
                    std::initializer_list<NodeId> new_set) {
    Configuration c = config(g, t, old_set);
    c.new_members = set_of(new_set);
    return c;
}

constexpr std::uint64_t kSystemId = 7;

ProposerGreeting greeting() {
    ProposerGreeting g;
    g.system_id = kSystemId;
    g.wal_segment_size = 16 * 1024 * 1024;
    g.pg_timeline = 1;
    return g;
}

}  // namespace

TEST_CASE("configuration: a joint quorum needs a majority of both sets", "[core][membership]") {
    const Configuration c = config(1, 0, {1, 2, 3});
    CHECK(is_quorum(c, {1, 2}));
    CHECK_FALSE(is_quorum(c, {1}));
    CHECK_FALSE(is_quorum(c, {1, 4, 5, 6}));  // non-members never count
    CHECK_FALSE(is_quorum(c, {1, 1, 1}));     // one node counts once
    const Configuration j = joint(2, 3, {1, 2, 3}, {3, 4, 5});
    CHECK_FALSE(is_quorum(j, {1, 2}));     // old majority only
    CHECK_FALSE(is_quorum(j, {4, 5}));     // new majority only
    CHECK(is_quorum(j, {1, 2, 4, 5}));
    CHECK(is_quorum(j, {2, 3, 4}));        // node 3 counts in both sets
    CHECK_FALSE(is_quorum(Configuration{}, {1, 2, 3}));  // generation 0: no members

    // commit: per set the majority-th highest, the lowest of the sets.
    const std::vector<std::pair<NodeId, Lsn>> lsns = {{1, 500}, {2, 400}, {3, 300}, {4, 200}, {6, 900}};
    CHECK(quorum_lsn(c, lsns) == 400);
    CHECK(quorum_lsn(j, lsns) == 200);  // new set {3,4,5}: 300, 200, 0 -> 200
    // truncate_lsn: every member of every set; node 5 is unknown.
    CHECK(all_members_lsn(c, lsns) == 300);
    CHECK(all_members_lsn(j, lsns) == 0);
}

TEST_CASE("configuration: keys, validation, parsing", "[core][membership]") {
    CHECK(ConfigurationKey{2, 1} > ConfigurationKey{1, 9});
    CHECK(ConfigurationKey{2, 5} > ConfigurationKey{2, 4});  // same generation: later term wins
    CHECK(validate_configuration(joint(2, 3, {1, 2, 3}, {3, 4, 5})).ok());
    CHECK_FALSE(validate_configuration(joint(2, 3, {1, 2, 3}, {3, 2, 1})).ok());  // same sets
    Configuration dup = config(1, 0, {1, 2});
    dup.members.push_back(m(2));
    CHECK_THAT(validate_configuration(dup).message(), Catch::Contains("listed twice"));
    Configuration zero = config(1, 0, {1});
    zero.members[0].id = 0;
    CHECK_THAT(validate_configuration(zero).message(), Catch::Contains("node id 0"));
    Configuration legacy;
    legacy.members = set_of({1});
    CHECK_FALSE(validate_configuration(legacy).ok());  // generation 0 has no members

    auto parsed = parse_member_set("1=sk1:5454, 2=[::1]:6000");
    REQUIRE(parsed);
    CHECK(parsed->size() == 2);
    CHECK((*parsed)[1].address.host == "::1");
    CHECK_THAT(parse_member_set("sk1:5454").status().message(), Catch::Contains("id=host:port"));
    CHECK_THAT(parse_member_set("x=sk1:5454").status().message(), Catch::Contains("bad node id"));
    CHECK_FALSE(parse_member_set("1=sk1:5454,1=sk2:5454"));

    // Wire/disk form round trip, and a truncated one is refused.
    std::vector<std::uint8_t> bytes;
    ByteWriter<std::vector<std::uint8_t>> w(bytes);
    const Configuration j = joint(4, 9, {1, 2, 3}, {1, 2, 4});
    put_configuration(w, j);
    ByteReader r(bytes.data(), bytes.size());
    auto back = read_configuration(r);
    REQUIRE(back);
    CHECK(*back == j);
    ByteReader shortr(bytes.data(), bytes.size() - 1);
    CHECK_THAT(read_configuration(shortr).status().message(), Catch::Contains("truncated"));
}

TEST_CASE("acceptor: stale configurations are refused, newer ones installed durably",
          "[core][membership]") {
    MemoryAcceptorStorage storage;
    Acceptor a(AcceptorConfig{2}, &storage, AcceptorDurableState{});
    const ProposerGreeting g = greeting();
    REQUIRE(a.handle_greeting(g).ok());
    const Configuration c2 = config(2, 1, {1, 2, 3});
    REQUIRE(a.handle_vote_request(VoteRequest{1, 0, c2.key()})->vote_granted);
    ProposerElected pe{1, 0x1000, {{1, 0x1000}}, c2};
    REQUIRE(a.handle_proposer_elected(g, pe).ok());
    CHECK(storage.durable.configuration == c2);  // persisted with the term

    // A vote of an older configuration: refused, nothing changes, and the
    // reply says why and carries the configuration to adopt.
    auto v = a.handle_vote_request(VoteRequest{5, 0, ConfigurationKey{1, 0}});
    REQUIRE(v);
    CHECK_FALSE(v->vote_granted);
    CHECK(v->term == 1);
    CHECK(storage.durable.term == 1);
    CHECK_THAT(v->refusal, Catch::StartsWith("stale configuration"));
    CHECK(v->configuration == c2);
    // Same generation, created in an earlier term: older too.
    CHECK_FALSE(a.handle_vote_request(VoteRequest{5, 0, ConfigurationKey{2, 0}})->vote_granted);
    // The greeting is answered with the configuration.
    CHECK(a.handle_greeting(g)->configuration == c2);

    // Appends of another generation are refused with the reason.
    AppendRequest ar{1, 0x1000, 0x1000, 0, 0, 1, {}};
    CHECK_THAT(a.handle_append_request(ar).message(), Catch::StartsWith("stale configuration"));
    ar.generation = 3;
    CHECK_THAT(a.handle_append_request(ar).message(), Catch::Contains("unknown configuration"));
    ar.generation = 2;
    CHECK(a.handle_append_request(ar).ok());

    // ConfigurationUpdate: newer installed (durable), older refused.
    const Configuration j3 = joint(3, 1, {1, 2, 3}, {1, 3, 4});
    auto up = a.handle_configuration_update(ConfigurationUpdate{1, j3});
    REQUIRE(up);
    CHECK(up->generation == 3);
    CHECK(storage.durable.configuration == j3);
    CHECK_THAT(a.handle_configuration_update(ConfigurationUpdate{1, c2}).message(),
               Catch::StartsWith("stale configuration"));
    // Another term than the accepted one is not the elected proposer's.
    CHECK_FALSE(a.handle_configuration_update(ConfigurationUpdate{4, config(9, 4, {1})}).ok());

    // Removed: node 2 installs the configuration that removes it, then
    // refuses votes and appends.
    const Configuration c4 = config(4, 1, {1, 3, 4});
    REQUIRE(a.handle_configuration_update(ConfigurationUpdate{1, c4}).ok());
    auto refused = a.handle_vote_request(VoteRequest{6, 0, c4.key()});
    CHECK_FALSE(refused->vote_granted);
    CHECK_THAT(refused->refusal, Catch::StartsWith("not a member"));
    ar.generation = 4;
    CHECK_THAT(a.handle_append_request(ar).message(), Catch::StartsWith("not a member"));
    // A ProposerElected whose configuration leaves this node out is refused.
    MemoryAcceptorStorage s2;
    Acceptor b(AcceptorConfig{9}, &s2, AcceptorDurableState{});
    REQUIRE(b.handle_vote_request(VoteRequest{1, 0, c2.key()})->vote_granted);
    CHECK_THAT(b.handle_proposer_elected(g, pe).message(), Catch::StartsWith("not a member"));
}

namespace {

// Acceptors with node ids 1..n on a synchronous network; the proposer's slot
// k goes to the acceptor of slot_member(k).id.
struct MembershipCluster {
    struct Node {
        MemoryAcceptorStorage storage;
        std::unique_ptr<Acceptor> acceptor;
        StreamingSlot slot;
        std::unique_ptr<AcceptorSession> session;
        bool up = true;
    };
    std::vector<std::unique_ptr<Node>> nodes;
    TimeMs now = 1000;
    std::optional<Configuration> persisted;
    std::uint64_t next_session = 1;

    explicit MembershipCluster(std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            nodes.push_back(std::make_unique<Node>());
            nodes.back()->acceptor = std::make_unique<Acceptor>(
                AcceptorConfig{i + 1}, &nodes.back()->storage, AcceptorDurableState{});
        }
    }
    // Legacy slots (node id 0) are the nodes in order.
    Node& node_of(Proposer& p, std::size_t slot) {
        const NodeId id = p.slot_member(slot).id;
        return *nodes[id == 0 ? slot : id - 1];
    }

    void run(Proposer& p, ProposerOutput first, int ticks = 50) {
        std::deque<ProposerOutput> outputs{std::move(first)};
        for (int t = 0; t <= ticks; ++t) {
            while (!outputs.empty()) {
                ProposerOutput out = std::move(outputs.front());
                outputs.pop_front();
                if (out.persist_configuration) persisted = out.persist_configuration;
                for (std::size_t k : out.disconnect) close(node_of(p, k));
                for (const auto& msg : out.messages) {
                    Node& n = node_of(p, msg.acceptor);
                    if (!n.session) continue;
                    SessionStep step = n.session->handle(decode(msg.payload).value());
                    SessionStep batch = n.session->finish_batch();
                    std::vector<Message> replies;
                    for (const auto& r : step.batch) replies.push_back(r);
                    if (step.reply) replies.push_back(*step.reply);
                    for (const auto& r : batch.batch) replies.push_back(r);
                    if (step.error || batch.error) {
                        close(n);
                        outputs.push_back(p.on_disconnected(msg.acceptor, now, "error"));
                        break;
                    }
                    for (const auto& r : replies) {
                        const auto bytes = encode(r);
                        outputs.push_back(p.on_message(msg.acceptor, bytes.data(), bytes.size(), now));
                    }
                }
                for (std::size_t k : out.connect) {
                    Node& n = node_of(p, k);
                    close(n);
                    if (!n.up) {
                        outputs.push_back(p.on_disconnected(k, now, "down"));
                        continue;
                    }
                    n.session = std::make_unique<AcceptorSession>(next_session++, AcceptorSessionConfig{},
                                                                  *n.acceptor, n.slot);
                    outputs.push_back(p.on_connected(k, now));
                }
            }
            now += 100;
            outputs.push_back(p.on_tick(now));
        }
    }
    void close(Node& n) {
        if (n.session) n.session->close();
        n.session.reset();
    }
};

ProposerConfig proposer_config(const Configuration& c) {
    ProposerConfig cfg;
    cfg.greeting = greeting();
    cfg.configuration = c;
    cfg.timeline_start_lsn = 0x1000;
    cfg.max_append_bytes = 0x400;
    return cfg;
}

}  // namespace

TEST_CASE("proposer: an election in a joint configuration needs both majorities",
          "[core][membership]") {
    MembershipCluster cluster(5);
    MemoryWal wal = MemoryWal::pattern();
    const Configuration j = joint(2, 0, {1, 2, 3}, {3, 4, 5});
    Proposer p(proposer_config(j), &wal);
    CHECK(p.slot_count() == 5);
    cluster.nodes[3]->up = false;  // nodes 4 and 5: the new set has only node 3
    cluster.nodes[4]->up = false;
    cluster.run(p, p.start(cluster.now, 0x3000), 20);
    CHECK(p.state() != ProposerState::kElected);
    cluster.nodes[3]->up = true;  // node 4 back: {3, 4} is a majority of the new set
    cluster.run(p, p.on_tick(cluster.now), 40);
    CHECK(p.state() == ProposerState::kElected);
    // The joint configuration is finished: C(3) = {3, 4, 5} once node 3 and
    // 4 hold everything committed.
    CHECK(p.configuration().generation == 3);
    CHECK_FALSE(p.configuration().is_joint());
    CHECK(same_set(p.configuration().members, set_of({3, 4, 5})));
    REQUIRE(cluster.persisted);
    CHECK(*cluster.persisted == p.configuration());
    CHECK(p.commit_lsn() == 0x3000);
}

TEST_CASE("proposer: replace a member through the joint configuration", "[core][membership]") {
    MembershipCluster cluster(4);
    MemoryWal wal = MemoryWal::pattern();
    Proposer p(proposer_config(config(1, 0, {1, 2, 3})), &wal);
    cluster.run(p, p.start(cluster.now, 0x3000), 20);
    REQUIRE(p.state() == ProposerState::kElected);
    REQUIRE(p.commit_lsn() == 0x3000);
    CHECK(cluster.nodes[0]->storage.durable.configuration.generation == 1);
    CHECK_THAT(p.request_membership(set_of({1, 1})).message(), Catch::Contains("listed twice"));

    REQUIRE(p.request_membership(set_of({1, 2, 4})).ok());
    cluster.run(p, p.on_wal_available(0x5000, cluster.now), 40);
    CHECK(p.configuration() == config(3, p.term(), {1, 2, 4}));
    CHECK(p.commit_lsn() == 0x5000);
    CHECK(cluster.nodes[3]->acceptor->flush_lsn() == 0x5000);  // the new member caught up
    for (std::size_t i : {0, 1, 3}) CHECK(cluster.nodes[i]->storage.durable.configuration.generation == 3);
    // The removed node learned the configuration that removes it.
    CHECK(cluster.nodes[2]->storage.durable.configuration.generation == 3);
    const ProposerStatus st = p.status();
    CHECK(st.target_members.empty());
    for (const AcceptorStatus& a : st.acceptors)
        if (a.node_id == 3) CHECK_FALSE(a.member);

    // The primary restarted with its configuration file lost (the old
    // configuration) adopts the newer one from the greetings and is elected
    // in it.
    ProposerConfig restarted = proposer_config(config(1, 0, {1, 2, 3}));
    restarted.own_term_history = {{p.term(), 0x1000}};
    Proposer old(restarted, &wal);
    cluster.run(old, old.start(cluster.now, 0x5000), 40);
    CHECK(old.configuration() == p.configuration());
    CHECK(old.state() == ProposerState::kElected);
}

TEST_CASE("proposer: a change does not skip the joint configuration", "[core][membership]") {
    // The negative control's switch: with unsafe_test_only_skip_joint the
    // change goes straight to the new set (wpsim --break joint catches it).
    MembershipCluster cluster(4);
    MemoryWal wal = MemoryWal::pattern();
    ProposerConfig cfg = proposer_config(config(1, 0, {1, 2, 3}));
    cfg.unsafe_test_only_skip_joint = true;
    Proposer p(cfg, &wal);
    cluster.run(p, p.start(cluster.now, 0x3000), 20);
    REQUIRE(p.request_membership(set_of({1, 2, 4})).ok());
    cluster.run(p, p.on_tick(cluster.now), 1);
    REQUIRE(cluster.persisted);
    CHECK(cluster.persisted->generation == 2);
    CHECK_FALSE(cluster.persisted->is_joint());  // the rule is off
}

TEST_CASE("proposer: a legacy proposer does not adopt a configuration and is refused",
          "[core][membership]") {
    // Acceptors that hold C(2); a proposer without a configuration (the
    // extension's slots are its own list) keeps its three slots and is never
    // elected there: the acceptors refuse its votes as stale.
    MembershipCluster cluster(3);
    MemoryWal wal = MemoryWal::pattern();
    Proposer configured(proposer_config(config(2, 0, {1, 2, 3})), &wal);
    cluster.run(configured, configured.start(cluster.now, 0x2000), 20);
    REQUIRE(configured.state() == ProposerState::kElected);
    ProposerConfig cfg = proposer_config(Configuration{});
    cfg.acceptor_count = 3;
    cfg.own_term_history = {{configured.term(), 0x1000}};
    Proposer legacy(cfg, &wal);
    cluster.run(legacy, legacy.start(cluster.now, 0x2000), 20);
    CHECK(legacy.state() != ProposerState::kElected);
    CHECK(legacy.slot_count() == 3);
    CHECK(legacy.configuration().generation == 0);
    const ProposerStatus st = legacy.status();
    CHECK_THAT(st.acceptors[0].last_error, Catch::Contains("stale configuration") ||
                                               Catch::Contains("no configuration"));
    for (std::size_t k = 0; k < 3; ++k) CHECK(cluster.nodes[k]->storage.durable.term == configured.term());
}

TEST_CASE("walproposer.safekeepers: the legacy list and the member form", "[core][membership]") {
    auto legacy = parse_safekeepers_setting("sk1:5454, sk2:5454");
    REQUIRE(legacy);
    CHECK_FALSE(legacy->member_form);
    CHECK(legacy->addresses.size() == 2);
    auto empty = parse_safekeepers_setting("  ");
    REQUIRE(empty);
    CHECK(empty->addresses.empty());
    auto members = parse_safekeepers_setting("1=sk1:5454,2=sk2:5454,3=[::1]:5455");
    REQUIRE(members);
    CHECK(members->member_form);
    REQUIRE(members->members.size() == 3);
    CHECK(members->members[2].id == 3);
    CHECK(members->members[2].address.port == 5455);
    auto mixed = parse_safekeepers_setting("1=sk1:5454,sk2:5454");
    REQUIRE_FALSE(mixed);
    CHECK_THAT(mixed.message(), Catch::Contains("mixes the two forms"));
    CHECK_FALSE(parse_safekeepers_setting("1=sk1:5454,1=sk2:5454"));  // duplicate id
    CHECK_FALSE(parse_safekeepers_setting("0=sk1:5454"));             // id 0
    CHECK_FALSE(parse_safekeepers_setting("x=sk1:5454"));
}

TEST_CASE("standby_conninfo lists every safekeeper with the timeline's ids", "[core][config]") {
    auto legacy = wp::parse_safekeepers_setting("sk1:5454,[::1]:5455");
    REQUIRE(legacy.ok());
    CHECK(wp::standby_conninfo(*legacy, "aa", "bb", {}) ==
          "host=sk1,::1 port=5454,5455 options='-c tenant_id=aa -c timeline_id=bb'");
    auto members = wp::parse_safekeepers_setting("1=sk1:5454,2=sk2:6000");
    REQUIRE(members.ok());
    CHECK(wp::standby_conninfo(*members, "aa", "bb",
                               {{"user", "replica"}, {"sslrootcert", "/etc/my ca/it's.crt"}}) ==
          "host=sk1,sk2 port=5454,6000 user=replica sslrootcert='/etc/my ca/it\\'s.crt' "
          "options='-c tenant_id=aa -c timeline_id=bb'");
}
