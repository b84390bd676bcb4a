// Socket wait bits shared by files that cannot include PostgreSQL's latch.h.
// worker_wait.cpp static_asserts that they equal WL_SOCKET_READABLE/WRITEABLE.
#pragma once

namespace wp::pg {
constexpr int kWaitReadable = 1 << 1;  // WL_SOCKET_READABLE
constexpr int kWaitWritable = 1 << 2;  // WL_SOCKET_WRITEABLE
}  // namespace wp::pg
