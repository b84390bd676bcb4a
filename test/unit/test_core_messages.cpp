#include <catch2/catch.hpp>

#include <cstring>
#include <random>

#include "walproposer/byte_order.h"
#include "walproposer/messages.h"

using namespace wp;

namespace {

std::vector<Message> sample_messages() {
    ProposerGreeting g;
    g.system_id = 7300000000000000001ull;
    g.pg_version = 150004;
    g.wal_segment_size = 16 * 1024 * 1024;
    g.tenant_id.fill(0xAB);
    g.timeline_id.fill(0xCD);
    g.pg_timeline = 3;
    g.proposer_id[0] = 9;
    g.pg_timeline_history = "1\t0/3000000\tno recovery target specified\n";
    Configuration joint;
    joint.generation = 4;
    joint.created_term = 7;
    joint.members = {{1, {"sk1", 5454}}, {2, {"sk2", 5454}}, {3, {"sk3", 5454}}};
    joint.new_members = MemberSet{{1, {"sk1", 5454}}, {2, {"sk2", 5454}}, {4, {"::1", 6000}}};
    AcceptorGreeting ag{42, 7, 6, 0x1000123, 77, 16 * 1024 * 1024, 3, 4, joint};
    VoteRequest vr{8, 5, joint.key()};
    g.flags = kGreetingFlagSync;
    VoteResponse vp;
    vp.term = 8;
    vp.vote_granted = true;
    vp.flush_lsn = 0x2000000;
    vp.truncate_lsn = 0x1000000;
    vp.term_history = {{1, 0x1000000}, {5, 0x1800000}};
    vp.tail_lsn = 0x2000000 - 3;
    vp.tail = {7, 8, 9};
    vp.configuration = joint;
    vp.refusal = "stale configuration";
    ProposerElected pe;
    pe.term = 8;
    pe.start_streaming_lsn = 0x1800000;
    pe.term_history = {{1, 0x1000000}, {5, 0x1800000}, {8, 0x2000000}};
    pe.configuration = joint;
    AppendRequest ar;
    ar.term = 8;
    ar.begin_lsn = 0x2000000;
    ar.end_lsn = 0x2000005;
    ar.commit_lsn = 0x1FFFFFF;
    ar.truncate_lsn = 0x1000000;
    ar.wal = {1, 2, 3, 4, 5};
    ar.generation = 4;
    AppendResponse ap{8, 0x2000005, 0x2000000, 123456789012ull, 987ull, 4};
    WalReadRequest rr{8, 0x1000000, 0x1000100};
    WalReadResponse rp{8, 0x1000000, {4, 5, 6}};
    ConfigurationUpdate cu{8, joint};
    return {g, ag, vr, vp, pe, ar, ap, rr, rp, cu};
}

Result<Message> decode_bytes(const std::vector<std::uint8_t>& b) { return decode(b.data(), b.size()); }

void put_u32(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
    store_le32(&b[at], v);
}

}  // namespace

TEST_CASE("every message round-trips through the codec", "[core][codec]") {
    for (const Message& m : sample_messages()) {
        const std::vector<std::uint8_t> bytes = encode(m);
        auto back = decode_bytes(bytes);
        INFO(message_name(m));
        REQUIRE(back.ok());
        CHECK(back->index() == m.index());
        CHECK(back.value() == m);
        CHECK(!describe(m).empty());
    }
}

TEST_CASE("layout is little-endian with a one-byte tag", "[core][codec]") {
    const auto bytes = encode(VoteRequest{0x0102030405060708ull, 0});
    REQUIRE(bytes.size() == 25);  // tag, term, fence, generation, configuration term
    CHECK(bytes[0] == 'V');
    CHECK(bytes[1] == 0x08);
    CHECK(bytes[8] == 0x01);
    const auto ack = encode(AppendResponse{1, 2, 3, 4, 5});
    CHECK(ack.size() == 45);
    // A configuration of generation 0 is 17 bytes (generation, term, an empty set, joint 0).
    CHECK(encode(AcceptorGreeting{}).size() == 33 + 8 + 4 + 4 + 4 + 17);
    ProposerGreeting g;
    CHECK(encode(g).size() == 1 + 4 + 8 + 4 + 4 + 16 + 16 + 4 + 16 + 4 + 4);
    CHECK(encode(WalReadRequest{}).size() == 25);
    CHECK(encode(WalReadResponse{1, 2, {9}}).size() == 1 + 8 + 8 + 4 + 1);
}

TEST_CASE("every truncation of every message is an error", "[core][codec]") {
    for (const Message& m : sample_messages()) {
        const auto bytes = encode(m);
        for (std::size_t len = 0; len < bytes.size(); ++len) {
            auto r = decode(bytes.data(), len);
            INFO(message_name(m) << " truncated to " << len);
            CHECK_FALSE(r.ok());
            CHECK(!r.message().empty());
        }
    }
}

TEST_CASE("trailing bytes, unknown tags and empty input are errors", "[core][codec]") {
    for (const Message& m : sample_messages()) {
        auto bytes = encode(m);
        bytes.push_back(0);
        INFO(message_name(m));
        CHECK_FALSE(decode_bytes(bytes).ok());
    }
    CHECK_FALSE(decode(nullptr, 0).ok());
    const std::vector<std::uint8_t> unknown = {'Z', 0, 0, 0};
    auto r = decode_bytes(unknown);
    REQUIRE_FALSE(r.ok());
    CHECK(r.message().find("unknown message tag") != std::string::npos);
}

TEST_CASE("term history counts are bounded and checked", "[core][codec]") {
    VoteResponse vp;
    vp.term = 2;
    vp.term_history = {{1, 10}};
    auto bytes = encode(vp);
    const std::size_t count_at = 1 + 8 + 1 + 8 + 8;
    SECTION("count above the cap, without allocating") {
        put_u32(bytes, count_at, 0xFFFFFFFFu);
        auto r = decode_bytes(bytes);
        REQUIRE_FALSE(r.ok());
        CHECK(r.message().find("limit") != std::string::npos);
    }
    SECTION("count larger than the bytes present") {
        put_u32(bytes, count_at, 2);
        CHECK_FALSE(decode_bytes(bytes).ok());
    }
    SECTION("non-increasing terms are malformed") {
        vp.term_history = {{3, 10}, {2, 20}};
        CHECK_FALSE(decode_bytes(encode(vp)).ok());
        vp.term_history = {{1, 30}, {2, 20}};
        CHECK_FALSE(decode_bytes(encode(vp)).ok());
        vp.term_history = {{0, 30}};
        CHECK_FALSE(decode_bytes(encode(vp)).ok());
    }
    SECTION("granted flag must be 0 or 1") {
        bytes[9] = 2;
        CHECK_FALSE(decode_bytes(bytes).ok());
    }
}

TEST_CASE("AppendRequest length must equal end - begin and stay bounded", "[core][codec]") {
    AppendRequest ar;
    ar.term = 1;
    ar.begin_lsn = 100;
    ar.end_lsn = 104;
    ar.wal = {1, 2, 3, 4};
    auto good = encode(ar);
    SECTION("more bytes than the range") {
        auto b = good;
        b.push_back(5);
        CHECK_FALSE(decode_bytes(b).ok());
    }
    SECTION("fewer bytes than the range") {
        auto b = good;
        b.pop_back();
        CHECK_FALSE(decode_bytes(b).ok());
    }
    SECTION("end before begin") {
        ar.end_lsn = 99;
        ar.wal.clear();
        CHECK_FALSE(decode_bytes(encode(ar)).ok());
    }
    SECTION("oversized range is rejected before reading") {
        ar.end_lsn = ar.begin_lsn + kMaxWalPayloadBytes + 1;
        ar.wal.clear();
        auto r = decode_bytes(encode(ar));
        REQUIRE_FALSE(r.ok());
        CHECK(r.message().find("limit") != std::string::npos);
    }
    SECTION("empty heartbeat is fine") {
        ar.end_lsn = ar.begin_lsn;
        ar.wal.clear();
        CHECK(decode_bytes(encode(ar)).ok());
    }
}

TEST_CASE("oversized PG timeline history is rejected", "[core][codec]") {
    ProposerGreeting g;
    auto bytes = encode(g);
    put_u32(bytes, bytes.size() - 4, static_cast<std::uint32_t>(kMaxTimelineHistoryBytes + 1));
    CHECK_FALSE(decode_bytes(bytes).ok());
    put_u32(bytes, bytes.size() - 4, 10);  // claims 10 bytes, has none
    CHECK_FALSE(decode_bytes(bytes).ok());
}

TEST_CASE("random garbage never crashes the decoder", "[core][codec]") {
    std::mt19937_64 rng(12345);
    const auto samples = sample_messages();
    for (int i = 0; i < 20000; ++i) {
        std::vector<std::uint8_t> b;
        if (i % 2) {
            b = encode(samples[rng() % samples.size()]);
            const int flips = 1 + static_cast<int>(rng() % 4);
            for (int f = 0; f < flips && !b.empty(); ++f) b[rng() % b.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
        } else {
            b.resize(rng() % 64);
            for (auto& x : b) x = static_cast<std::uint8_t>(rng());
        }
        auto r = decode(b.data(), b.size());
        if (r.ok()) CHECK(encode(r.value()) == b);  // anything accepted re-encodes identically
    }
}

TEST_CASE("a VoteResponse's WAL tail is bounded and ends at its flush LSN", "[core][codec]") {
    VoteResponse v;
    v.term = 2;
    v.flush_lsn = 0x5000;
    v.tail_lsn = 0x4000;
    v.tail.assign(0x1000, 1);
    REQUIRE(decode(encode(v)).ok());
    v.tail_lsn = 0x4001;  // does not end at flush
    auto bad = decode(encode(v));
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.message().find("flush") != std::string::npos);
    v.flush_lsn = 0x10000;
    v.tail_lsn = 0x10000 - (kVoteTailBytes + 1);
    v.tail.assign(kVoteTailBytes + 1, 1);
    auto big = decode(encode(v));
    REQUIRE_FALSE(big.ok());
    CHECK(big.message().find("limit") != std::string::npos);
}
