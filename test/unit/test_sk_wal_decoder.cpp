#include <catch2/catch.hpp>

#include <random>

#include "test_sk_helpers.h"
#include "storage/wal_decoder.h"
#include "storage/wal_format.h"
#include "support/wal_generator.h"

using namespace wp;
using namespace wp::sk;
using namespace sk_test;

namespace {
WalStreamDecoder::Options sample_options() {
    WalStreamDecoder::Options o;
    o.segment_size = kSampleSegmentSize;
    o.system_id = kSampleSystemId;
    return o;
}
}  // namespace

TEST_CASE("decoder finds the end of real PostgreSQL WAL", "[sk][decoder]") {
    const auto wal = sample_wal();
    REQUIRE(wal.size() == 0xA14000 - kSampleStart);
    WalStreamDecoder d(sample_options(), kSampleStart);
    d.feed(wal.data(), wal.size());
    CHECK(d.failed());  // zeros after the end
    CHECK_THAT(d.failure(), Catch::Contains("zero record length at " + format_lsn(kSampleEnd)));
    CHECK(d.valid_end() == kSampleEnd);
    CHECK(d.last_record_start() == kSampleLastRecord);
    CHECK(d.records_decoded() == 28);
}

TEST_CASE("decoder gives the same answer for any chunking", "[sk][decoder]") {
    const auto wal = sample_wal();
    std::mt19937_64 rng(42);
    for (int round = 0; round < 20; ++round) {
        WalStreamDecoder d(sample_options(), kSampleStart);
        std::size_t off = 0;
        while (off < wal.size()) {
            std::size_t n = std::min<std::size_t>(wal.size() - off, 1 + rng() % (round < 10 ? 50 : 20000));
            d.feed(wal.data() + off, n);
            off += n;
        }
        CHECK(d.valid_end() == kSampleEnd);
        CHECK(d.records_decoded() == 28);
    }
}

TEST_CASE("decoder stops at a torn last record", "[sk][decoder]") {
    auto wal = sample_wal();
    SECTION("COMMIT cut in the middle") {
        std::fill(wal.begin() + static_cast<long>(kSampleLastRecord + 10 - kSampleStart), wal.end(), 0);
        WalStreamDecoder d(sample_options(), kSampleStart);
        d.feed(wal.data(), wal.size());
        CHECK(d.valid_end() == kSampleLastRecord);
        CHECK(d.last_record_start() == kSampleSecondLast);
    }
    SECTION("record crossing the segment boundary cut in the second segment") {
        std::fill(wal.begin() + static_cast<long>(0xA08000 - kSampleStart), wal.end(), 0);
        WalStreamDecoder d(sample_options(), kSampleStart);
        d.feed(wal.data(), wal.size());
        CHECK(d.valid_end() == kSampleBigRecord);
        CHECK_THAT(d.failure(), Catch::Contains("end of WAL: zeroed page at page 0/A08000"));
    }
    SECTION("data only up to a page boundary inside the big record") {
        WalStreamDecoder d(sample_options(), kSampleStart);
        d.feed(wal.data(), 0xA00000 - kSampleStart);
        CHECK_FALSE(d.failed());
        CHECK(d.in_record());
        CHECK(d.valid_end() == kSampleBigRecord);
        CHECK(d.partial_record_start() == kSampleBigRecord);
    }
    SECTION("a flipped bit inside the big record fails its CRC") {
        wal[0x9F0100 - kSampleStart] ^= 1;
        WalStreamDecoder d(sample_options(), kSampleStart);
        d.feed(wal.data(), wal.size());
        CHECK(d.valid_end() == kSampleBigRecord);
        CHECK_THAT(d.failure(), Catch::Contains("CRC mismatch at 0/9A4900"));
    }
    SECTION("wrong page address") {
        wal[0xA00000 - kSampleStart + 9] ^= 1;  // xlp_pageaddr of the segment's first page
        WalStreamDecoder d(sample_options(), kSampleStart);
        d.feed(wal.data(), wal.size());
        CHECK(d.valid_end() == kSampleBigRecord);
        CHECK_THAT(d.failure(), Catch::Contains("page address"));
        CHECK_THAT(d.failure(), Catch::EndsWith(" at page 0/A00000"));
    }
    SECTION("system id of another cluster") {
        auto o = sample_options();
        o.system_id = 1;
        WalStreamDecoder d(o, kSampleStart);
        d.feed(wal.data(), wal.size());
        CHECK(d.valid_end() == kSampleBigRecord);
        CHECK_THAT(d.failure(), Catch::Contains("system id mismatch at page 0/A00000"));
    }
}

TEST_CASE("decoder starts at a record boundary", "[sk][decoder]") {
    const auto wal = sample_wal();
    const std::size_t off = kSampleBigRecord - kSampleStart;
    WalStreamDecoder d(sample_options(), kSampleBigRecord);
    d.feed(wal.data() + off, wal.size() - off);
    CHECK(d.valid_end() == kSampleEnd);
    CHECK(d.records_decoded() == 4);
}

TEST_CASE("generated WAL decodes", "[sk][decoder][generator]") {
    const std::uint32_t seg = 1u << 20;
    WalGenerator gen(99, seg, 1, 0x3000000);
    std::vector<std::uint8_t> wal;
    std::mt19937_64 rng(7);
    for (int i = 0; i < 400; ++i) {
        auto r = gen.append_record(24 + static_cast<std::uint32_t>(rng() % 20000));
        wal.insert(wal.end(), r.begin(), r.end());
    }
    REQUIRE(gen.position() > 0x3000000 + seg);  // crosses a segment boundary
    WalStreamDecoder::Options o;
    o.segment_size = seg;
    o.system_id = 99;
    WalStreamDecoder d(o, 0x3000000);
    d.feed(wal.data(), wal.size());
    CHECK_FALSE(d.failed());
    CHECK(d.records_decoded() == 400);
    CHECK(d.valid_end() == gen.position());
    CHECK(d.last_record_start() == gen.last_record_start());
}
