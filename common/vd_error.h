/* vd_error: errors as values.
 *
 * A function that can fail takes a `vd_error *err` (may be NULL) as its last argument, returns
 * false (or NULL, or a negative number) on failure and fills *err with why. A vd_error is a plain
 * value: it owns no heap memory and needs no freeing.
 *
 * Where one call can find many mistakes (a rule file, a request against its schema), it collects
 * them in a vd_diags list instead, which the caller frees with vd_diags_free().
 */
#ifndef VD_ERROR_H
#define VD_ERROR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum { VD_ERROR_MESSAGE_MAX = 512, VD_ERROR_WHERE_MAX = 256 };

typedef struct vd_error {
  char message[VD_ERROR_MESSAGE_MAX];
  /* Where the mistake is: a file (with 1-based line and column, 0 when unknown) or a JSON field
   * path such as "subject.recency". Empty strings when not applicable. */
  char file[VD_ERROR_WHERE_MAX];
  int line;
  int column;
  char field[VD_ERROR_WHERE_MAX];
} vd_error;

/* Sets err (if non-NULL) to a message; clears file, line, column and field. Always returns false so
 * that `return vd_error_set(err, ...);` reads as a failure. */
bool vd_error_set(vd_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* As vd_error_set, with a file position. */
bool vd_error_at(vd_error *err, const char *file, int line, int column, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* As vd_error_set, naming a JSON field path. */
bool vd_error_field(vd_error *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefixes the message with "prefix: " (for adding context while an error travels up). */
void vd_error_prefix(vd_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vd_error_clear(vd_error *err);

/* Formats "file:line:col: message" (or "field: message", or just "message") into buf. */
void vd_error_format(const vd_error *err, char *buf, size_t size);

/* A growable list of errors. Zero-initialise (`vd_diags d = {0};`); free with vd_diags_free. */
typedef struct vd_diags {
  vd_error *items;
  size_t count;
  size_t capacity;
} vd_diags;

/* Appends a copy of err. Returns false only when out of memory (the error is then dropped). */
bool vd_diags_add(vd_diags *diags, const vd_error *err);
void vd_diags_free(vd_diags *diags);

#endif
