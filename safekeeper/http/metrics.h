// Prometheus text-format rendering for the /metrics endpoint (http_api.cpp).
// The counters themselves live with what they count (storage/io_counters.h).
#pragma once

#include <string>

#include "storage/io_counters.h"

namespace wp::sk {

// Appends the Prometheus text lines of histogram `name` (`_bucket`, `_sum`,
// `_count`) with extra `labels` ("a=\"b\"" form, may be empty) to `out`.
void render_histogram(std::string& out, const std::string& name, const std::string& labels,
                      const Histogram& histogram);

}  // namespace wp::sk
