/* vd_journal: the decision log's intake — append-only files where each decision is written
 * before it is acknowledged, so that the SQLite index can take the rows in bulk later, on the
 * log's own thread, without the acknowledgement waiting for a B-tree commit.
 *
 * Why: an SQLite commit of one row writes about eight pages to the WAL (the row's leaf, a leaf
 * of each index and the header page) and costs ~50-140 us of CPU; the journal write is one
 * pwritev(2) of the row itself (~3 KB), and the index commits hundreds of rows at a time.
 *
 * Two files, DB_PATH.journal-0 and DB_PATH.journal-1, used in turn: once the active one holds
 * VD_JOURNAL_FILE_BYTES, appends move to the other — emptied first — as soon as every frame in it
 * is indexed (vd_journal_indexed); until then the active file grows on. So the journal holds
 * what is not indexed yet plus at most two files' worth, and never needs compacting.
 *
 * A frame is a 16-byte header and the payload:
 *   bytes 0-3    payload length, uint32 little-endian
 *   bytes 4-7    CRC-32 (zlib) of bytes 0-3, 8-15 and the payload, uint32 little-endian
 *   bytes 8-15   the frame's position: 1, 2, 3, ... across both files, uint64 little-endian
 *   bytes 16-    the payload
 * A crash in the middle of a write leaves at most one incomplete frame, at the end, never
 * acknowledged; open cuts it off. Damage elsewhere (good frames after it) is skipped, not cut.
 *
 * Durability: a frame is in the file (the kernel's page cache) once append returns, so it
 * survives the process being killed; vd_journal_sync then waits for an fdatasync(2) that covers
 * it (group sync: one call covers every frame written before it started), so it survives power
 * loss.
 *
 * One process at a time: open takes an exclusive flock(2) on journal-0, waiting up to
 * lock_wait_ms, and reports `busy` when another process keeps it.
 *
 * Ownership: vd_journal_open returns a handle closed with vd_journal_close. Payloads are borrowed
 * for the call. Thread-safe, except close.
 */
#ifndef VD_JOURNAL_H
#define VD_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vd_error.h"

enum {
  VD_JOURNAL_HEADER = 16,
  VD_JOURNAL_FILE_BYTES = 16 << 20,  /* a file is reused once past this and fully indexed */
  VD_JOURNAL_PAYLOAD_MAX = 80 << 20, /* a longer frame is damage: a trace blob holds 64 MiB */
};

typedef struct vd_journal vd_journal;

/* Called by open for each frame found, oldest first; payload is borrowed for the call. Returning
 * false stops the open, which then fails with the visitor's err. */
typedef bool (*vd_journal_visit)(void *ctx, uint64_t position, const unsigned char *payload,
                                 size_t len, vd_error *err);

typedef struct vd_journal_options {
  bool sync;             /* appends are synced (vd_journal_sync) */
  unsigned lock_wait_ms; /* how long open waits for another process to let the journal go */
} vd_journal_options;

/* Opens (creating) DB_PATH.journal-0 and -1 — regular files, never through a symbolic link —,
 * locks them, and passes every frame they hold to visit (which may be NULL), oldest first. A
 * frame that does not read ends a file only when nothing good follows (a torn write, cut off);
 * damage with good frames after it is skipped and counted (vd_journal_damaged_bytes) and the
 * frames after it are read. NULL with err when a file cannot be opened, read or locked; *busy
 * (may be NULL) is set when the reason is another process holding the lock past lock_wait_ms. */
vd_journal *vd_journal_open(const char *db_path, const vd_journal_options *options,
                            vd_journal_visit visit, void *ctx, bool *busy, vd_error *err);

/* Bytes open skipped as damage (0 normally): for a warning and the metrics. */
uint64_t vd_journal_damaged_bytes(vd_journal *j);

/* Empties both files: every frame in them is indexed (call it after open's visit has indexed
 * them all; positions go on from where they were). */
bool vd_journal_clear(vd_journal *j, vd_error *err);

/* Writes one frame. Returns its position, or 0 with err (the file system's error; nothing of
 * the frame stays in the file). Frames are positioned in the order of the calls. */
uint64_t vd_journal_append(vd_journal *j, const void *payload, size_t len, vd_error *err);

/* Opened with sync: waits until an fdatasync covers the frame at `position` (the first caller
 * syncs for everyone waiting). Without sync: true at once. */
bool vd_journal_sync(vd_journal *j, uint64_t position, vd_error *err);

/* Every frame up to `position` is indexed: a file holding only such frames may be emptied. */
void vd_journal_indexed(vd_journal *j, uint64_t position);

/* Empties the file appends are not going to, once every frame in it is indexed, so that the
 * next move to it costs nothing: freeing a full file's pages takes 0.5-0.7 ms here (ftruncate of
 * 16 MiB), which every append behind the move would otherwise wait for. Call it off the hot path
 * (the log's writer thread does). */
void vd_journal_recycle(vd_journal *j);

/* The journal's size in bytes, both files (for metrics). */
uint64_t vd_journal_bytes(vd_journal *j);

/* Closes the files (releasing the lock), removing them when they hold no frame. */
void vd_journal_close(vd_journal *j);

#endif
