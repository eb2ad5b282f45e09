/* vd_buf: a growable byte buffer that always keeps a NUL after its contents.
 *
 * Zero-initialise (`vd_buf b = {0};`), append, read b.data / b.len, and free with vd_buf_free.
 * Appending never fails silently: on out-of-memory the buffer is marked `oom` and further appends
 * are ignored, so callers check once at the end. */
#ifndef VD_BUF_H
#define VD_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "vd_error.h"

typedef struct vd_buf {
  char *data;
  size_t len;
  size_t capacity;
  bool oom;
} vd_buf;

void vd_buf_append(vd_buf *b, const void *data, size_t size);
void vd_buf_puts(vd_buf *b, const char *s);
void vd_buf_printf(vd_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vd_buf_reset(vd_buf *b); /* empties it, keeping the memory */
void vd_buf_free(vd_buf *b);
/* Hands the contents to the caller (free() them) and leaves b empty. NULL on oom. */
char *vd_buf_take(vd_buf *b);

/* Reads a whole file into a NUL-terminated heap string (caller frees). Sets *size if non-NULL.
 * Refuses files larger than max_size bytes, and anything that is not a regular file
 * (vd_open_regular). */
char *vd_read_file(const char *path, size_t max_size, size_t *size, vd_error *err);

/* Opens path for reading only if it is a regular file; a FIFO, a device, a socket or a folder is
 * refused with err saying which, without blocking (opening a FIFO waits for a writer, a device
 * may never end). Every reader of a file a user names goes through these. Returns the file
 * descriptor (the caller closes it) or -1; vd_fopen_regular the stream (fclose) or NULL. On failure
 * errno is ENOENT exactly when the file does not exist (callers treating that as "none yet"). */
int vd_open_regular(const char *path, vd_error *err);
FILE *vd_fopen_regular(const char *path, vd_error *err);

/* The same for writing a file a user names (verdict score --out, train --out DIR, eval reports):
 * path must be a regular file or not exist yet (it is then created, mode 0666 less the umask); a
 * FIFO, device, socket or folder is refused at once, with err "PATH is a FIFO (named pipe), not a
 * regular file", as for reading (opening a FIFO for writing waits for a reader for ever).
 * flags adds O_TRUNC, O_APPEND or O_EXCL to O_WRONLY | O_CREAT. vd_open_write_regular returns
 * the descriptor or -1; vd_fopen_write_regular truncates and returns the stream or NULL. */
int vd_open_write_regular(const char *path, int flags, vd_error *err);
FILE *vd_fopen_write_regular(const char *path, vd_error *err);

#endif
