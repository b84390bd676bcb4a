#include "http/metrics.h"

#include <cstdio>

namespace wp::sk {

void render_histogram(std::string& out, const std::string& name, const std::string& labels,
                      const Histogram& histogram) {
    const std::string sep = labels.empty() ? "" : ",";
    std::uint64_t cumulative = 0;
    char buf[64];
    for (std::size_t i = 0; i <= Histogram::kBounds.size(); ++i) {
        cumulative += histogram.bucket(i);
        std::string le = "+Inf";
        if (i < Histogram::kBounds.size()) {
            std::snprintf(buf, sizeof buf, "%g", Histogram::kBounds[i]);
            le = buf;
        }
        out += name + "_bucket{" + labels + sep + "le=\"" + le + "\"} " + std::to_string(cumulative) +
               "\n";
    }
    std::snprintf(buf, sizeof buf, "%.6f", histogram.sum_seconds());
    out += name + "_sum{" + labels + "} " + buf + "\n";
    out += name + "_count{" + labels + "} " + std::to_string(histogram.count()) + "\n";
}

}  // namespace wp::sk
