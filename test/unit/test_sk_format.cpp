#include <catch2/catch.hpp>

#include "storage/control_file.h"
#include "storage/crc32c.h"
#include "test_sk_helpers.h"
#include "storage/wal_format.h"

using namespace wp;
using namespace wp::sk;

TEST_CASE("CRC-32C matches PostgreSQL's", "[sk][crc]") {
    // CRC-32C check value of "123456789".
    CHECK(wp_crc32c("123456789", 9) == 0xE3069283u);
    std::uint32_t c = crc32c_update(kCrc32cInit, "1234", 4);
    c = crc32c_finish(crc32c_update(c, "56789", 5));
    CHECK(c == 0xE3069283u);
}

TEST_CASE("WAL segment names are PostgreSQL's", "[sk][segment]") {
    const std::uint32_t mb16 = 16u << 20, mb1 = 1u << 20;
    CHECK(wal_segment_file_name(1, 1, mb16) == "000000010000000000000001");
    CHECK(wal_segment_file_name(1, 0xFF, mb16) == "0000000100000000000000FF");
    CHECK(wal_segment_file_name(1, 0x100, mb16) == "000000010000000100000000");
    CHECK(wal_segment_file_name(2, 0x1234, mb1) == "000000020000000100000234");
    CHECK(wal_segment_file_name(0xA, 9, mb1) == "0000000A0000000000000009");
    CHECK(segment_of(0xA12CF0, mb1) == 0xA);
    CHECK(segment_start(0xA, mb1) == 0xA00000);

    auto p = parse_wal_segment_file_name("000000020000000100000234", mb1);
    REQUIRE(p);
    CHECK(p->pg_timeline == 2);
    CHECK(p->segno == 0x1234);
    CHECK_FALSE(p->partial);
    auto q = parse_wal_segment_file_name("000000010000000000000009.partial", mb1);
    REQUIRE(q);
    CHECK(q->partial);
    CHECK(q->segno == 9);
    for (const char* bad : {"", "00000001000000000000000", "0000000100000000000000090", "000000010000000000000009.tmp",
                            "000000010000000000000009.partial.tmp", "00000001000000000000000a",
                            "000000010000000000001000" /* seg >= 4096 for 1 MB */, "safekeeper.control"}) {
        INFO(bad);
        CHECK_FALSE(parse_wal_segment_file_name(bad, mb1));
    }
    CHECK(is_valid_segment_size(mb1));
    CHECK(is_valid_segment_size(mb16));
    CHECK(is_valid_segment_size(1u << 30));
    CHECK_FALSE(is_valid_segment_size(0));
    CHECK_FALSE(is_valid_segment_size(3u << 20));
    CHECK_FALSE(is_valid_segment_size(1u << 19));
}

namespace {
ControlFileData sample_control() {
    ControlFileData d;
    d.acceptor.term = 7;
    d.acceptor.term_history = {{1, 0x1000000}, {3, 0x1000A00}, {7, 0x2000000}};
    d.acceptor.commit_lsn = 0x1FFF000;
    d.acceptor.truncate_lsn = 0x1800000;
    d.acceptor.timeline_start_lsn = 0x1000000;
    for (int i = 0; i < 16; ++i) {
        d.acceptor.identity.tenant_id[i] = static_cast<std::uint8_t>(i);
        d.acceptor.identity.timeline_id[i] = static_cast<std::uint8_t>(0xF0 + i);
    }
    d.acceptor.identity.system_id = 7712077702027686120ULL;
    d.acceptor.identity.pg_version = 150004;
    d.acceptor.identity.pg_timeline = 2;
    d.acceptor.identity.wal_segment_size = 16u << 20;
    d.pg_timeline_history = "1\t0/3000000\tno recovery target specified\n";
    d.wal_scan_start_lsn = 0x1FFE000;
    d.acceptor.min_pg_timeline = 3;
    return d;
}
}  // namespace

TEST_CASE("control file round trip", "[sk][control]") {
    const ControlFileData d = sample_control();
    auto decoded = decode_control_file(encode_control_file(d));
    REQUIRE(decoded);
    CHECK(*decoded == d);
    ControlFileData empty;
    auto e = decode_control_file(encode_control_file(empty));
    REQUIRE(e);
    CHECK(*e == empty);
}

TEST_CASE("control file: version 3 holds the configuration; version 2 is read without one",
          "[sk][control]") {
    ControlFileData d = sample_control();
    d.acceptor.configuration.generation = 5;
    d.acceptor.configuration.created_term = 7;
    d.acceptor.configuration.members = {{1, {"sk1", 5454}}, {2, {"sk2", 5454}}, {3, {"sk3", 5454}}};
    d.acceptor.configuration.new_members =
        MemberSet{{1, {"sk1", 5454}}, {2, {"sk2", 5454}}, {4, {"10.0.0.4", 6000}}};
    const std::string v3 = encode_control_file(d);
    CHECK(v3[4] == 3);
    auto back = decode_control_file(v3);
    REQUIRE(back);
    CHECK(*back == d);

    const ControlFileData plain = sample_control();
    const std::string v2 = sk_test::control_file_as_v2(encode_control_file(plain));
    auto old = decode_control_file(v2);
    REQUIRE(old);
    CHECK(*old == plain);
    CHECK(old->acceptor.configuration.generation == 0);
    CHECK(encode_control_file(*old)[4] == 3);  // written again: version 3

    // A version 3 file whose configuration is malformed (a member with node
    // id 0; consistent length and CRC) is refused, naming the configuration.
    ControlFileData bad = d;
    bad.acceptor.configuration.members[0].id = 0;
    auto r = decode_control_file(encode_control_file(bad));
    REQUIRE_FALSE(r);
    CHECK(r.status().kind() == StatusKind::kCorrupt);
    CHECK_THAT(r.status().message(), Catch::Contains("configuration"));
}

TEST_CASE("control file: version 2 holds the fence; version 1 is read with fence 0",
          "[sk][control]") {
    const ControlFileData d = sample_control();
    const std::string v3 = encode_control_file(d);
    const std::string v2 = sk_test::control_file_as_v2(v3);
    CHECK(v2[4] == 2);
    auto back = decode_control_file(v2);
    REQUIRE(back);
    CHECK(back->acceptor.min_pg_timeline == 3);

    const std::string v1 = sk_test::control_file_as_v1(v3);
    REQUIRE(v1.size() == v2.size() - 4);
    auto old = decode_control_file(v1);
    REQUIRE(old);
    CHECK(old->acceptor.min_pg_timeline == 0);
    ControlFileData expected = d;
    expected.acceptor.min_pg_timeline = 0;
    CHECK(*old == expected);
    // Written again, it is the current version.
    CHECK(encode_control_file(*old)[4] == 3);

    // A version 2 file without the fence (consistent length and CRC) is
    // malformed, not a version 1 file.
    std::string no_fence = v1;
    no_fence[4] = 2;
    const std::uint32_t crc = wp_crc32c(no_fence.data(), no_fence.size() - 4);
    wp::store_le32(&no_fence[no_fence.size() - 4], crc);
    auto r = decode_control_file(no_fence);
    REQUIRE_FALSE(r);
    CHECK(r.status().kind() == StatusKind::kCorrupt);
    CHECK_THAT(r.status().message(), Catch::Contains("malformed"));
    // A corrupt version 1 file is still refused.
    std::string bad_v1 = v1;
    bad_v1[20] ^= 0x10;
    auto c = decode_control_file(bad_v1);
    REQUIRE_FALSE(c);
    CHECK_THAT(c.status().message(), Catch::Contains("CRC"));
}

TEST_CASE("control file rejects every corruption", "[sk][control]") {
    const std::string good = encode_control_file(sample_control());
    auto expect_corrupt = [](const std::string& bytes, const std::string& what) {
        auto r = decode_control_file(bytes);
        REQUIRE_FALSE(r);
        CHECK(r.status().kind() == StatusKind::kCorrupt);
        CHECK_THAT(r.status().message(), Catch::Contains(what));
    };
    SECTION("bad magic") {
        std::string b = good;
        b[0] ^= 1;
        expect_corrupt(b, "magic");
    }
    SECTION("unknown version") {
        std::string b = good;
        b[4] = 4;
        expect_corrupt(b, "unknown format version 4");
        b[4] = 0;
        expect_corrupt(b, "unknown format version 0");
    }
    SECTION("bad CRC: any flipped payload bit") {
        for (std::size_t i = 12; i < good.size(); i += 7) {
            std::string b = good;
            b[i] ^= 0x10;
            INFO(i);
            expect_corrupt(b, "CRC");
        }
    }
    SECTION("short file") {
        for (std::size_t n : {std::size_t{0}, std::size_t{3}, std::size_t{15}, good.size() - 1}) {
            INFO(n);
            auto r = decode_control_file(good.substr(0, n));
            REQUIRE_FALSE(r);
            CHECK(r.status().kind() == StatusKind::kCorrupt);
        }
    }
    SECTION("trailing bytes") { expect_corrupt(good + "x", "length"); }
}

TEST_CASE("control file store/load through the file system", "[sk][control]") {
    char tmpl[] = "/tmp/sk_control_XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    const std::string dir = tmpl;
    FileSystem& fs = real_file_system();
    auto missing = load_control_file(fs, dir);
    REQUIRE_FALSE(missing);
    CHECK(missing.status().kind() == StatusKind::kNotFound);
    ControlFileData d = sample_control();
    REQUIRE(store_control_file(fs, dir, d));
    d.acceptor.term = 8;
    REQUIRE(store_control_file(fs, dir, d));
    auto loaded = load_control_file(fs, dir);
    REQUIRE(loaded);
    CHECK(loaded->acceptor.term == 8);
    CHECK_FALSE(fs.exists(dir + "/safekeeper.control.tmp"));
    REQUIRE(fs.remove_tree(dir));
}
