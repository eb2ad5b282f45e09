/* vd_trace_blob: how the decision log stores a trace — LZ4-compressed in a small self-describing
 * blob, or, when that would not make it smaller, as the JSON text itself.
 *
 * A blob is a 12-byte header and an LZ4 block (lz4.h, LZ4_compress_default):
 *   bytes 0-2   magic "VDZ"
 *   byte  3     format: 1 = LZ4 block (the only one so far)
 *   bytes 4-7   the trace's length in bytes, uint32 little-endian
 *   bytes 8-11  CRC-32 (zlib) of bytes 0-7 and of the LZ4 block, uint32 little-endian
 *   bytes 12-   the LZ4 block
 * The checksum makes a damaged blob (a flipped bit in the file, a truncated value) an error
 * rather than different JSON: LZ4 itself would decode many damaged blocks without complaint.
 * The log stores a blob as an SQLite BLOB and a trace left as it is as TEXT, so rows written by
 * versions before compression (all TEXT) read as they always did.
 *
 * Ownership: vd_trace_blob_encode allocates *blob, vd_trace_blob_decode the text it returns (the
 * caller frees both). Both are pure functions of their input, thread-safe.
 */
#ifndef VD_TRACE_BLOB_H
#define VD_TRACE_BLOB_H

#include <stdbool.h>
#include <stddef.h>

#include "vd_error.h"

enum {
  VD_TRACE_BLOB_HEADER = 12,
  VD_TRACE_BLOB_LZ4 = 1,
  /* The longest trace a blob holds: a trace is a few times its request, and requests are at
   * most limits.max_body_bytes (64 KiB by default). A row claiming more is refused before any
   * allocation for it (a 4 MB blob could claim 1 GiB); a longer trace is stored as text. */
  VD_TRACE_BLOB_MAX = 64 << 20,
};

/* Compresses text[0..len). True with *blob (malloc'ed) and *blob_len when the blob is smaller
 * than the text; false with *blob NULL when the text should be stored as it is: it does not
 * shrink, it is longer than VD_TRACE_BLOB_MAX, or memory ran out (storing it raw is still right).
 */
bool vd_trace_blob_encode(const char *text, size_t len, void **blob, size_t *blob_len);

/* The trace a blob holds: a malloc'ed NUL-terminated text (free() it), its length in *text_len.
 * NULL with err saying what is wrong — too short for its header, not a trace blob (magic), an
 * unknown format, a length out of range, a checksum mismatch, a block that does not decode to
 * exactly the recorded length — or "out of memory". */
char *vd_trace_blob_decode(const void *blob, size_t len, size_t *text_len, vd_error *err);

#endif
