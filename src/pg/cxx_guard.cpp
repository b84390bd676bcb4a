extern "C" {
#include "postgres.h"

#include "storage/lwlock.h"
#include "utils/memutils.h"
}

#include "cxx_guard.h"

namespace wp::pg {

bool pg_guarded_call(void (*fn)(void*), void* arg, char* errbuf, std::size_t errbuf_size) {
    MemoryContext volatile caller_context = CurrentMemoryContext;
    volatile bool ok = true;
    PG_TRY();
    {
        fn(arg);
    }
    PG_CATCH();
    {
        // The error may have left PostgreSQL's locks held; the worker runs no
        // transaction, so releasing them is all the clean-up it needs.
        LWLockReleaseAll();
        MemoryContextSwitchTo(caller_context);
        ErrorData* error = CopyErrorData();
        FlushErrorState();
        snprintf(errbuf, errbuf_size, "%s", error->message ? error->message : "unknown error");
        FreeErrorData(error);
        ok = false;
    }
    PG_END_TRY();
    return ok;
}

}  // namespace wp::pg
