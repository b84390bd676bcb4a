extern "C" {
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "access/timeline.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xlogreader.h"
#include "nodes/pg_list.h"
#include "utils/memutils.h"
}

#include <cerrno>
#include <cstring>
#include <string>

#include "cxx_guard.h"
#include "wal_source.h"

namespace wp::pg {

namespace {

// errno of the last failed segment open (0 when it succeeded).
int g_open_errno = 0;

// Like PostgreSQL's wal_segment_open, but never raises: on failure the
// segment fd stays -1, WALRead then fails and read_wal() reports it.
void open_segment(XLogReaderState* state, XLogSegNo segno, TimeLineID* tli) {
    char path[MAXPGPATH];
    XLogFilePath(path, *tli, segno, state->segcxt.ws_segsize);
    state->seg.ws_file = open(path, O_RDONLY | PG_BINARY, 0);
    g_open_errno = state->seg.ws_file < 0 ? errno : 0;
}

void close_segment(XLogReaderState* state) {
    if (state->seg.ws_file >= 0) close(state->seg.ws_file);
    state->seg.ws_file = -1;
}

XLogReaderRoutine g_routine = {nullptr, open_segment, close_segment};

// The history of the insertion timeline, read once per timeline, in
// TopMemoryContext.
List* g_history = nullptr;
TimeLineID g_history_tli = 0;

// The PG timeline that holds `lsn`, and where that timeline ends (0 = open).
// Plain C types only: called with no C++ object live.
TimeLineID timeline_of(XLogRecPtr lsn, XLogRecPtr* switch_point) {
    const TimeLineID current = GetWALInsertionTimeLine();
    *switch_point = 0;
    if (current == 1) return current;
    if (g_history_tli != current) {
        MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
        List* history = readTimeLineHistory(current);
        MemoryContextSwitchTo(old);
        if (g_history != nullptr) list_free_deep(g_history);
        g_history = history;
        g_history_tli = current;
    }
    const TimeLineID tli = tliOfPointInHistory(lsn, g_history);
    if (tli != current) *switch_point = tliSwitchPoint(tli, g_history, nullptr);
    return tli;
}

}  // namespace

PgWalSource::PgWalSource() {
    reader_ = XLogReaderAllocate(wal_segment_size, nullptr, &g_routine, nullptr);
    if (reader_ == nullptr) elog(FATAL, "walproposer: out of memory allocating a WAL reader");
}

PgWalSource::~PgWalSource() { XLogReaderFree(reader_); }

namespace {

// Arguments and results of one guarded WALRead; plain data only.
struct ReadRequest {
    XLogReaderState* reader;
    XLogRecPtr begin;
    XLogRecPtr end;  // in: wanted end; out: end actually read (stops at a timeline switch)
    char* buffer;    // room for end - begin bytes
    bool ok;
    TimeLineID tli;
    WALReadError error;
};

void read_guarded(void* arg) {
    ReadRequest* request = static_cast<ReadRequest*>(arg);
    XLogRecPtr switch_point = 0;
    request->tli = timeline_of(request->begin, &switch_point);
    if (switch_point != 0 && switch_point > request->begin && switch_point < request->end)
        request->end = switch_point;
    request->ok = WALRead(request->reader, request->buffer, request->begin,
                          static_cast<Size>(request->end - request->begin), request->tli,
                          &request->error);
}

}  // namespace

wp::Status PgWalSource::read_wal(wp::Lsn begin, wp::Lsn end, std::vector<std::uint8_t>& out) {
    if (begin > end) return wp::Status::error("read_wal: begin after end");
    // From the window as far as it goes; the rest (WAL flushed since, or
    // older than the window) from disk.
    begin = window_.copy(begin, end, out);
    if (begin == end) return wp::Status();
    const std::size_t old_size = out.size();
    wp::Status status = read_from_disk(begin, end, out);
    if (status.ok()) window_.remember(begin, out.data() + old_size, out.size() - old_size);
    return status;
}

wp::Status PgWalSource::read_from_disk(wp::Lsn begin, wp::Lsn end, std::vector<std::uint8_t>& out) {
    while (begin < end) {
        const std::size_t old_size = out.size();
        out.resize(old_size + static_cast<std::size_t>(end - begin));
        ReadRequest request{};
        request.reader = reader_;
        request.begin = begin;
        request.end = end;
        request.buffer = reinterpret_cast<char*>(out.data() + old_size);
        char errbuf[kErrorBufferSize];
        if (!pg_guarded_call(read_guarded, &request, errbuf, sizeof errbuf)) {
            out.resize(old_size);
            return wp::Status::error(std::string("cannot read WAL at ") + format_lsn(begin) +
                                     ": " + errbuf);
        }
        out.resize(old_size + static_cast<std::size_t>(request.end - begin));
        if (!request.ok) {
            out.resize(old_size);
            char segment[MAXFNAMELEN];
            XLogFileName(segment, request.tli, request.error.wre_seg.ws_segno, wal_segment_size);
            const int err = g_open_errno != 0 ? g_open_errno : request.error.wre_errno;
            close_segment(reader_);
            return wp::Status::error(
                std::string("cannot read WAL at ") + format_lsn(begin) + " from segment " +
                segment + ": " +
                (err == ENOENT ? "it has already been removed"
                               : (err != 0 ? std::strerror(err) : "short read")));
        }
        begin = request.end;
    }
    return wp::Status();
}

}  // namespace wp::pg
