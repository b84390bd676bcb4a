// Small files of the walproposer worker in the data directory (its term
// history, its membership configuration): read whole, and replaced durably.
//
// Durability: write_data_file_durably() returns ok only after the content is
// in a temporary file that is fsynced and renamed over the old one with
// PostgreSQL's durable_rename (file and directory fsynced): a crash leaves
// the old file or the new one, never a mix. Called from the worker only; no
// state is kept. Errors are values naming the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "walproposer/result.h"

namespace wp::pg {

// DataDir/name's content; nullopt when it does not exist. Larger than
// `max_size`: an error.
wp::Result<std::optional<std::string>> read_data_file(const char* name, std::size_t max_size);

// Replaces DataDir/name with `content` (through name + ".tmp").
wp::Status write_data_file_durably(const char* name, const std::string& content);

// CRC-32C of `text` (PostgreSQL's implementation), for the files' checksum lines.
std::uint32_t data_file_crc(const std::string& text);

}  // namespace wp::pg
