// The project's shared primitives: Status/Result, byte order, ids.
#include <catch2/catch.hpp>

#include <cerrno>
#include <string>
#include <vector>

#include "walproposer/byte_order.h"
#include "walproposer/result.h"
#include "walproposer/timeline_key.h"

using namespace wp;

TEST_CASE("Status: ok() tests, Status() is success, errors keep kind and errno",
          "[core][primitives]") {
    CHECK(Status().ok());
    CHECK(Status::success().ok());
    CHECK(Status().to_string() == "ok");
    const Status e = Status::error("boom");
    CHECK_FALSE(e.ok());
    CHECK(e.kind() == StatusKind::kError);
    CHECK(e.message() == "boom");
    CHECK(Status::error("").message() == "unspecified error");
    const Status io = Status::from_errno("open x", ENOSPC);
    CHECK(io.kind() == StatusKind::kIoError);
    CHECK(io.sys_errno() == ENOSPC);
    CHECK(Status::from_errno("open x", ENOENT).kind() == StatusKind::kNotFound);
    CHECK(Status::corrupt("bad").kind() == StatusKind::kCorrupt);
    CHECK(Status::invalid("bad").kind() == StatusKind::kInvalidInput);
    CHECK(Status::error(StatusKind::kOk, "x").kind() == StatusKind::kError);
    const Status ctx = io.with_context("segment 1");
    CHECK(ctx.message().rfind("segment 1: open x: ", 0) == 0);
    CHECK(ctx.sys_errno() == ENOSPC);
    CHECK(Status().with_context("ignored").ok());

    Result<int> r = 5;
    CHECK(r.ok());
    CHECK(*r == 5);
    Result<int> bad = Status::corrupt("no");
    CHECK_FALSE(bad.ok());
    CHECK(bad.status().kind() == StatusKind::kCorrupt);
    CHECK(bad.message() == "no");
}

TEST_CASE("byte order: explicit little- and big-endian encodings", "[core][primitives]") {
    std::vector<std::uint8_t> le, be;
    put_le16(le, 0x0102);
    put_le32(le, 0x03040506u);
    put_le64(le, 0x0708090A0B0C0D0Eull);
    put_be16(be, 0x0102);
    put_be32(be, 0x03040506u);
    put_be64(be, 0x0708090A0B0C0D0Eull);
    CHECK(le == std::vector<std::uint8_t>{2, 1, 6, 5, 4, 3, 0xE, 0xD, 0xC, 0xB, 0xA, 9, 8, 7});
    CHECK(be == std::vector<std::uint8_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 0xA, 0xB, 0xC, 0xD, 0xE});
    CHECK(get_le16(le.data()) == 0x0102);
    CHECK(get_le32(le.data() + 2) == 0x03040506u);
    CHECK(get_le64(le.data() + 6) == 0x0708090A0B0C0D0Eull);
    CHECK(get_be16(be.data()) == 0x0102);
    CHECK(get_be32(be.data() + 2) == 0x03040506u);
    CHECK(get_be64(be.data() + 6) == 0x0708090A0B0C0D0Eull);

    std::string s = "xxxx";
    store_be32(&s[0], 0x41424344u);
    CHECK(s == "ABCD");
    store_le32(&s[0], 0x41424344u);
    CHECK(s == "DCBA");

    std::string out;
    ByteWriter w(out);
    w.u8(0xFF);
    w.le32(1);
    w.be16(2);
    w.bytes("ab", 2);
    CHECK(out == std::string("\xFF\x01\x00\x00\x00\x00\x02"
                             "ab",
                             9));
}

TEST_CASE("byte order: the reader is bounds-checked and fails for good", "[core][primitives]") {
    const std::uint8_t data[] = {1, 0, 0, 0, 0, 0, 0, 0, 9};
    ByteReader r(data, sizeof data);
    std::uint32_t a = 0;
    std::uint64_t b = 77;
    REQUIRE(r.le32(a));
    CHECK(a == 1);
    CHECK(r.remaining() == 5);
    CHECK_FALSE(r.le64(b));  // only 5 bytes left
    CHECK(b == 77);          // untouched
    CHECK_FALSE(r.ok());
    CHECK(r.remaining() == 0);
    std::uint8_t c = 0;
    CHECK_FALSE(r.u8(c));  // failed for good, though a byte is there
    CHECK(r.take(0) == nullptr);
}

TEST_CASE("ids: 32 hex digits either case, formatted lower-case", "[core][primitives]") {
    auto id = parse_id("0123456789ABCDEF0123456789abcdef");
    REQUIRE(id.ok());
    CHECK((*id)[0] == 0x01);
    CHECK((*id)[7] == 0xEF);
    CHECK(format_id(*id) == "0123456789abcdef0123456789abcdef");
    auto short_id = parse_id("abcd");
    REQUIRE_FALSE(short_id.ok());
    CHECK(short_id.message() == "must be exactly 32 hexadecimal digits, got 4 characters");
    auto bad = parse_id("0123456789abcdef0123456789abcdeg");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.message() == "must contain only hexadecimal digits");
    CHECK(*parse_hex_id("0123456789ABCDEF0123456789ABCDEF") == "0123456789abcdef0123456789abcdef");

    const TimelineKey k{*id, *parse_id(std::string(32, 'f'))};
    CHECK(k.to_string() == "0123456789abcdef0123456789abcdef/" + std::string(32, 'f'));
    CHECK(k == TimelineKey{k.tenant, k.timeline});
    CHECK(TimelineKey{k.tenant, k.tenant} < k);
}
