// Fuzz target: the proposer <-> acceptor message codec (src/core/messages.cpp),
// which every safekeeper runs on bytes from the network. Any input must
// decode to a message or an error, never crash; a decoded message must
// encode and decode back to itself.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "walproposer/messages.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    wp::Result<wp::Message> m = wp::decode(data, size);
    if (!m.ok()) return 0;
    const std::vector<std::uint8_t> again = wp::encode(*m);
    wp::Result<wp::Message> round = wp::decode(again);
    if (!round.ok() || !(*round == *m)) std::abort();
    (void)wp::describe(*m);
    return 0;
}
