// Fuzz target: what the safekeeper reads back from its own disk, which a
// damaged disk or a stray file can make arbitrary. The first byte picks:
//   0: the control file (decode_control_file)
//   1: a timeline tombstone (decode_tombstone)
//   2: WAL segments (WalStreamDecoder, as start-up recovery and ingest run
//      it), fed in chunks whose sizes come from the input too
//   3: the replication slot file (decode_slot_file)
// Each must give a value or an error (for WAL: stop with failed()), never
// crash; a decoded control file must encode and decode back to itself.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "retention/slot_store.h"
#include "storage/control_file.h"
#include "storage/wal_decoder.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::uint8_t* body = data + 1;
    const std::size_t len = size - 1;
    const std::string bytes(reinterpret_cast<const char*>(body), len);
    switch (data[0] % 4) {
        case 0: {
            auto decoded = wp::sk::decode_control_file(bytes);
            if (decoded.ok()) {
                auto again = wp::sk::decode_control_file(wp::sk::encode_control_file(*decoded));
                if (!again.ok() || !(*again == *decoded)) std::abort();
            }
            break;
        }
        case 1: {
            wp::Id128 id{};
            id[0] = 0x22;
            (void)wp::sk::decode_tombstone(bytes, id);
            break;
        }
        case 2: {
            wp::sk::WalStreamDecoder::Options options;
            options.segment_size = 1u << 20;
            // Start at a segment boundary (a long page header is expected).
            wp::sk::WalStreamDecoder decoder(options, 3u << 20);
            std::size_t at = 0;
            std::uint8_t chunk_seed = data[0];
            while (at < len && !decoder.failed()) {
                chunk_seed = static_cast<std::uint8_t>(chunk_seed * 33 + 7);
                const std::size_t chunk = std::min<std::size_t>(len - at, 1 + chunk_seed % 97);
                decoder.feed(body + at, chunk);
                at += chunk;
            }
            // The valid end is a MAXALIGNed record end within what was fed
            // (its padding may not have been fed yet).
            const wp::Lsn fed_end_aligned = (decoder.position() + 7) & ~wp::Lsn{7};
            if (decoder.valid_end() < decoder.start() || decoder.valid_end() > fed_end_aligned)
                std::abort();
            break;
        }
        case 3: {
            auto slots = wp::sk::decode_slot_file(bytes);
            if (slots.ok()) {
                auto again = wp::sk::decode_slot_file(wp::sk::encode_slot_file(*slots));
                if (!again.ok() || again->size() != slots->size()) std::abort();
            }
            break;
        }
    }
    return 0;
}
