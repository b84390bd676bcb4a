// The primary's membership configuration, persisted in the data directory as
// `walproposer.configuration` (format in docs/extension.md) whenever the
// proposer says so (ProposerOutput::persist_configuration), before anything
// else of that output is carried out; loaded when the worker starts.
//
// Durability: save_configuration() returns ok only after the file is durably
// in place (data_file.h). Called from the worker only; no state is kept.
#pragma once

#include <optional>

#include "walproposer/configuration.h"
#include "walproposer/result.h"

namespace wp::pg {

// The configuration last saved; nullopt when there is none yet. A corrupt
// file is an error naming it.
wp::Result<std::optional<wp::Configuration>> load_configuration();

wp::Status save_configuration(const wp::Configuration& configuration);

}  // namespace wp::pg
