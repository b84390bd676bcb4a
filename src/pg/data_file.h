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

// The files' common text layout: `header` (its first line), lines, and a
// last line "crc32c XXXXXXXX" (CRC-32C of everything before it).
// checksummed_text() appends the checksum line to `body`; checked_body()
// returns the body (header included) or why it is corrupt.
std::string checksummed_text(std::string body);
wp::Result<std::string> checked_body(const std::string& content, const char* header);

}  // namespace wp::pg
