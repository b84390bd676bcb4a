// Fuzz target: the text formats read from outside. The first byte picks the
// parser, the rest is its input:
//   0: walproposer.safekeepers (parse_safekeeper_list, a GUC's check hook)
//   1: PostgreSQL timeline history files (parse_pg_timeline_history; the
//      safekeeper receives them in greetings and serves them to standbys)
//   2: replication commands (parse_replication_command, any client's query)
//   3: tenant/timeline ids (parse_id: startup options, HTTP paths)
//   4: member sets "id=host:port,..." (parse_member_set)
// Each must return a value or an error for any input, never crash.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "walproposer/config.h"
#include "walproposer/configuration.h"
#include "walproposer/pg_timeline_history.h"
#include "walproposer/timeline_key.h"
#include "wire/replication_command.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
    switch (data[0] % 5) {
        case 0: {
            auto list = wp::parse_safekeeper_list(text);
            if (list.ok())
                for (const auto& a : *list) (void)a.to_string();
            break;
        }
        case 1:
            (void)wp::parse_pg_timeline_history(text);
            break;
        case 2:
            (void)wp::sk::parse_replication_command(text);
            break;
        case 3:
            (void)wp::parse_id(text);
            break;
        case 4:
            (void)wp::parse_member_set(text);
            break;
    }
    return 0;
}
