/* vd_csv: a strict RFC 4180 CSV reader (comma separated, optional "quoted" fields with ""
 * escapes, LF or CRLF line ends) over a file read into memory.
 *
 * Ownership: vd_csv_open returns a reader the caller frees with vd_csv_close. The field pointers
 * vd_csv_next hands out are borrowed and stay valid until the next vd_csv_next or vd_csv_close.
 * Not thread-safe (one reader per thread). */
#ifndef VD_CSV_H
#define VD_CSV_H

#include <stdbool.h>
#include <stddef.h>

#include "vd_error.h"

typedef struct vd_csv vd_csv;

/* Opens a file (at most max_size bytes). NULL with err set when it cannot be read. */
vd_csv *vd_csv_open(const char *path, size_t max_size, vd_error *err);
/* Reads the next record. Returns 1 with *fields and *count set, 0 at the end of the file, or -1
 * with err set to "file:line:col: why" (an unterminated quote, text after a closing quote, a NUL
 * byte). A blank line is a record with one empty field. */
int vd_csv_next(vd_csv *csv, const char *const **fields, size_t *count, vd_error *err);
/* The 1-based line on which the record last returned by vd_csv_next starts. */
size_t vd_csv_line(const vd_csv *csv);
/* The file name given to vd_csv_open. */
const char *vd_csv_path(const vd_csv *csv);
void vd_csv_close(vd_csv *csv);

#endif
