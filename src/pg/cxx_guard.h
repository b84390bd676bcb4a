// The boundary between C++ and PostgreSQL inside walproposer.so.
//
// PostgreSQL reports errors with longjmp, which skips C++ destructors, and a
// C++ exception must never unwind through PostgreSQL frames. So:
//  - C++ code that owns objects with destructors runs inside run_cxx(); it
//    makes no PostgreSQL call that can ereport(ERROR). Any exception it
//    throws (std::bad_alloc, ...) is caught there and turned into a message.
//  - PostgreSQL calls that can raise an ERROR run in plain functions whose
//    locals are trivially destructible (char buffers, integers, pointers).
//    The caller raises the error with the message after run_cxx returned,
//    i.e. after every C++ object of that call is gone.
//  - Where C++ code (with live objects) must call into PostgreSQL, for
//    example the proposer core asking for WAL bytes, it goes through
//    pg_guarded_call(): the PostgreSQL call runs in a plain function under
//    PG_TRY, and an ERROR comes back as a message (the error state is
//    flushed), so the longjmp never crosses a C++ frame.
#pragma once

#include <cstddef>
#include <cstdio>
#include <exception>
#include <new>

namespace wp::pg {

constexpr std::size_t kErrorBufferSize = 512;

// Calls fn() and returns true; or, when it throws, copies the exception's
// message into errbuf (always NUL-terminated) and returns false.
template <typename Fn>
bool run_cxx(Fn&& fn, char* errbuf, std::size_t errbuf_size) noexcept {
    try {
        fn();
        return true;
    } catch (const std::bad_alloc&) {
        snprintf(errbuf, errbuf_size, "out of memory");
    } catch (const std::exception& e) {
        snprintf(errbuf, errbuf_size, "%s", e.what());
    } catch (...) {
        snprintf(errbuf, errbuf_size, "unknown C++ exception");
    }
    return false;
}

// Runs fn(arg) under PG_TRY. Returns true if it returned normally; on an
// ERROR copies its message into errbuf, flushes the error state and returns
// false. fn must be a plain function whose own locals are trivially
// destructible. FATAL and PANIC still end the process, as everywhere.
bool pg_guarded_call(void (*fn)(void*), void* arg, char* errbuf, std::size_t errbuf_size);

}  // namespace wp::pg
