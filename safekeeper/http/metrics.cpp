#include "http/metrics.h"

#include <cstdio>

namespace wp::sk {

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
    const std::string sep = labels.empty() ? "" : ",";
    std::uint64_t cumulative = 0;
    char buf[64];
    for (std::size_t i = 0; i <= kBounds.size(); ++i) {
        cumulative += buckets_[i].load(std::memory_order_relaxed);
        std::string le = "+Inf";
        if (i < kBounds.size()) {
            std::snprintf(buf, sizeof buf, "%g", kBounds[i]);
            le = buf;
        }
        out += name + "_bucket{" + labels + sep + "le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
    }
    std::snprintf(buf, sizeof buf, "%.6f", static_cast<double>(sum_micros_.load()) / 1e6);
    out += name + "_sum{" + labels + "} " + buf + "\n";
    out += name + "_count{" + labels + "} " + std::to_string(count_.load()) + "\n";
}

}  // namespace wp::sk
