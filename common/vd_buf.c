#include "vd_buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool reserve(vd_buf *b, size_t extra) {
  if (b->oom) return false;
  size_t need = b->len + extra + 1;
  if (need <= b->capacity) return true;
  size_t capacity = b->capacity ? b->capacity : 64;
  while (capacity < need) capacity *= 2;
  char *data = realloc(b->data, capacity);
  if (!data) {
    b->oom = true;
    return false;
  }
  b->data = data;
  b->capacity = capacity;
  return true;
}

void vd_buf_append(vd_buf *b, const void *data, size_t size) {
  if (!reserve(b, size)) return;
  if (size) memcpy(b->data + b->len, data, size);
  b->len += size;
  b->data[b->len] = '\0';
}

void vd_buf_puts(vd_buf *b, const char *s) { vd_buf_append(b, s, strlen(s)); }

void vd_buf_printf(vd_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  va_list copy;
  va_copy(copy, ap);
  int n = vsnprintf(NULL, 0, fmt, copy);
  va_end(copy);
  if (n >= 0 && reserve(b, (size_t)n)) {
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
  }
  va_end(ap);
}

void vd_buf_reset(vd_buf *b) {
  b->len = 0;
  if (b->data) b->data[0] = '\0';
}

void vd_buf_free(vd_buf *b) {
  free(b->data);
  *b = (vd_buf){0};
}

char *vd_buf_take(vd_buf *b) {
  if (b->oom) {
    vd_buf_free(b);
    return NULL;
  }
  if (!b->data) reserve(b, 0);
  if (b->data) b->data[b->len] = '\0';
  char *data = b->data;
  *b = (vd_buf){0};
  return data;
}

static const char *file_kind(mode_t mode) {
  return S_ISDIR(mode)    ? "a folder"
         : S_ISFIFO(mode) ? "a FIFO (named pipe)"
         : S_ISCHR(mode)  ? "a character device"
         : S_ISBLK(mode)  ? "a block device"
         : S_ISSOCK(mode) ? "a socket"
                          : "not a file";
}

/* True when sb is a regular file's; else false with err "PATH is a FIFO (named pipe), not a
 * regular file" — the one message for readers and writers. */
static bool is_regular(const char *path, const struct stat *sb, vd_error *err) {
  if (S_ISREG(sb->st_mode)) return true;
  return vd_error_set(err, "%s is %s, not a regular file", path, file_kind(sb->st_mode));
}

/* fd, opened with O_NONBLOCK, as an ordinary blocking descriptor when it is a regular file; else
 * closed, -1 with err saying why and errno EINVAL (never a stale ENOENT: the file exists). */
static int regular_descriptor(int fd, const char *path, const char *verb, vd_error *err) {
  struct stat sb;
  bool stated = fstat(fd, &sb) == 0;
  if (!stated || !is_regular(path, &sb, err)) {
    if (!stated) vd_error_set(err, "cannot %s %s: %s", verb, path, strerror(errno));
    close(fd);
    errno = EINVAL;
    return -1;
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

/* fd (may be -1: NULL) as a stream; closed on failure. */
static FILE *stream_of(int fd, const char *mode, const char *path, vd_error *err) {
  if (fd < 0) return NULL;
  FILE *f = fdopen(fd, mode);
  if (!f) {
    vd_error_set(err, "cannot open %s: %s", path, strerror(errno));
    close(fd);
  }
  return f;
}

int vd_open_regular(const char *path, vd_error *err) {
  /* O_NONBLOCK: a FIFO opens at once instead of waiting for a writer, so fstat can refuse it */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    int open_errno = errno; /* kept for callers that treat ENOENT as "none yet" */
    vd_error_set(err, "cannot open %s: %s", path, strerror(open_errno));
    errno = open_errno;
    return -1;
  }
  return regular_descriptor(fd, path, "read", err);
}

FILE *vd_fopen_regular(const char *path, vd_error *err) {
  return stream_of(vd_open_regular(path, err), "rb", path, err);
}

int vd_open_write_regular(const char *path, int flags, vd_error *err) {
  struct stat sb;
  /* refused before any open: opening a device for writing may act on it (a tape rewinds) */
  if (stat(path, &sb) == 0 && !is_regular(path, &sb, err)) {
    errno = EINVAL;
    return -1;
  }
  /* O_NONBLOCK: a FIFO made after the stat fails to open (ENXIO) or opens at once instead of
   * waiting for a reader, and fstat refuses it */
  int fd = open(path, O_WRONLY | O_CREAT | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | flags, 0666);
  if (fd < 0) {
    vd_error_set(err, "cannot write %s: %s", path, strerror(errno));
    return -1;
  }
  return regular_descriptor(fd, path, "write", err);
}

FILE *vd_fopen_write_regular(const char *path, vd_error *err) {
  return stream_of(vd_open_write_regular(path, O_TRUNC, err), "wb", path, err);
}

char *vd_read_file(const char *path, size_t max_size, size_t *size, vd_error *err) {
  FILE *f = vd_fopen_regular(path, err);
  if (!f) return NULL;
  vd_buf b = {0};
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (b.len + n > max_size) {
      fclose(f);
      vd_buf_free(&b);
      vd_error_set(err, "%s is larger than the %zu-byte limit", path, max_size);
      return NULL;
    }
    vd_buf_append(&b, chunk, n);
  }
  bool failed = ferror(f);
  fclose(f);
  if (failed || b.oom) {
    vd_buf_free(&b);
    vd_error_set(err, "cannot read %s", path);
    return NULL;
  }
  if (size) *size = b.len;
  return vd_buf_take(&b);
}
