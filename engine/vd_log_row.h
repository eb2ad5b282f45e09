/* vd_log_row: a decision as the decision log's journal holds it — the bytes of one frame's
 * payload (vd_journal.h), written by the appending thread and read back by the writer thread,
 * or at open from what a killed process left.
 *
 * The payload: format (1 byte, VD_LOG_ROW_FORMAT), flags (bit 0: the stored trace is a
 * vd_trace_blob, else the JSON text), the timestamp (int64, µs), the trace's JSON length
 * (uint32), then the six fields — id, kind, subject id, ruleset version, model version, stored
 * trace — each a uint32 length (0xffffffff: none) and its bytes. All little-endian.
 *
 * Ownership: a decoded row points into the payload it was read from (borrowed: keep the payload
 * while the row is used). Pure functions, thread-safe.
 */
#ifndef VD_LOG_ROW_H
#define VD_LOG_ROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vd_error.h"

enum { VD_LOG_ROW_FORMAT = 1 };

typedef enum vd_log_row_field {
  VD_ROW_ID,
  VD_ROW_KIND,
  VD_ROW_SUBJECT,
  VD_ROW_RULESET,
  VD_ROW_MODEL,
  VD_ROW_TRACE, /* as stored: the blob, or the JSON text */
  VD_ROW_FIELDS
} vd_log_row_field;

typedef struct vd_log_row {
  int64_t timestamp_us;
  size_t trace_len;                 /* the trace's JSON length */
  bool blob;                        /* field VD_ROW_TRACE is a vd_trace_blob */
  const char *field[VD_ROW_FIELDS]; /* NULL: none (id, kind and trace never are) */
  uint32_t field_len[VD_ROW_FIELDS];
} vd_log_row;

/* The payload's size for a row (its field pointers and lengths set; NULL fields are none), or 0
 * with err when a field is longer than the format holds. */
size_t vd_log_row_size(const vd_log_row *row, vd_error *err);

/* Writes the row's payload into out (vd_log_row_size bytes). */
void vd_log_row_write(const vd_log_row *row, unsigned char *out);

/* Reads a payload into *row (pointing into payload), checking every length. False with err
 * when it is not a row of this format, a field is cut or missing, or bytes are left over. */
bool vd_log_row_read(const unsigned char *payload, size_t len, vd_log_row *row, vd_error *err);

#endif
