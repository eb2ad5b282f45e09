#include "vd_journal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include "vd_le.h"

/* One of the two files, and the positions of the frames it holds (0: none). */
typedef struct journal_file {
  int fd;
  char *path;
  uint64_t bytes;
  uint64_t first, last;
  bool emptying; /* vd_journal_recycle truncates it, without the lock */
} journal_file;

struct vd_journal {
  pthread_mutex_t lock; /* guards everything below */
  pthread_cond_t synced_cond;
  journal_file files[2];
  int active;
  bool sync;
  uint64_t next_position;
  uint64_t indexed; /* every frame up to here is in the index */
  uint64_t written; /* the last frame written */
  uint64_t synced;  /* the last frame an fdatasync covered */
  bool syncing;     /* an fdatasync is under way, without the lock */
};

/* CRC-32 of a frame: its length field, its position field and its payload. */
static uint32_t frame_crc(const unsigned char header[VD_JOURNAL_HEADER],
                          const unsigned char *payload, size_t len) {
  uLong crc = crc32(0L, header, 4);
  crc = crc32_z(crc, header + 8, 8);
  return (uint32_t)crc32_z(crc, payload, len);
}

static bool read_exactly(int fd, void *buf, size_t n, uint64_t offset) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    got += (size_t)r;
  }
  return true;
}

/* The position of a file's first frame, 0 when it holds none (or its first is damaged: then
 * scan_file finds nothing in it either). */
static uint64_t first_position(int fd) {
  unsigned char h[VD_JOURNAL_HEADER];
  return read_exactly(fd, h, sizeof h, 0) ? vd_le_get64(h + 8) : 0;
}

/* Reads a file's frames from the start, passing each to visit, and cuts the file after the last
 * good one (a torn or damaged tail: the crash happened while it was written). */
static bool scan_file(journal_file *f, vd_journal_visit visit, void *ctx, vd_error *err) {
  unsigned char h[VD_JOURNAL_HEADER];
  unsigned char *payload = NULL;
  size_t capacity = 0;
  uint64_t offset = 0;
  bool ok = true;
  while (read_exactly(f->fd, h, sizeof h, offset)) {
    uint32_t len = vd_le_get32(h);
    if (len > VD_JOURNAL_PAYLOAD_MAX) break;
    if (len > capacity) {
      unsigned char *grown = realloc(payload, len);
      if (!grown) {
        ok = vd_error_set(err, "decision log journal %s: out of memory", f->path);
        break;
      }
      payload = grown;
      capacity = len;
    }
    if (!read_exactly(f->fd, payload, len, offset + sizeof h)) break;
    if (frame_crc(h, payload, len) != vd_le_get32(h + 4)) break;
    uint64_t position = vd_le_get64(h + 8);
    if (visit && !visit(ctx, position, payload, len, err)) {
      ok = false;
      break;
    }
    if (!f->first) f->first = position;
    f->last = position;
    offset += sizeof h + len;
  }
  free(payload);
  if (!ok) return false;
  f->bytes = offset;
  if (ftruncate(f->fd, (off_t)offset) != 0)
    return vd_error_set(err, "decision log journal %s: cannot cut its damaged tail: %s", f->path,
                        strerror(errno));
  return true;
}

static bool open_file(journal_file *f, const char *db_path, int index, vd_error *err) {
  size_t n = strlen(db_path) + sizeof ".journal-0";
  f->path = malloc(n);
  if (!f->path) return vd_error_set(err, "out of memory");
  snprintf(f->path, n, "%s.journal-%d", db_path, index);
  f->fd = open(f->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (f->fd < 0)
    return vd_error_set(err, "decision log journal %s: cannot open: %s", f->path, strerror(errno));
  return true;
}

static void close_files(vd_journal *j) {
  for (int i = 0; i < 2; i++) {
    if (j->files[i].fd >= 0) close(j->files[i].fd);
    free(j->files[i].path);
  }
}

vd_journal *vd_journal_open(const char *db_path, bool sync, vd_journal_visit visit, void *ctx,
                            bool *busy, vd_error *err) {
  if (busy) *busy = false;
  vd_journal *j = calloc(1, sizeof *j);
  if (!j) {
    vd_error_set(err, "out of memory");
    return NULL;
  }
  j->files[0].fd = j->files[1].fd = -1;
  j->sync = sync;
  bool ok = open_file(&j->files[0], db_path, 0, err);
  if (ok && flock(j->files[0].fd, LOCK_EX | LOCK_NB) != 0) {
    if (busy) *busy = errno == EWOULDBLOCK;
    ok = vd_error_set(err, "decision log journal %s: %s", j->files[0].path,
                      errno == EWOULDBLOCK ? "in use by another process (a running verdict serve)"
                                           : strerror(errno));
  }
  ok = ok && open_file(&j->files[1], db_path, 1, err);
  if (ok) {
    /* oldest first: the file whose first frame comes first */
    uint64_t p0 = first_position(j->files[0].fd), p1 = first_position(j->files[1].fd);
    int older = p1 && (!p0 || p1 < p0) ? 1 : 0;
    ok = scan_file(&j->files[older], visit, ctx, err) &&
         scan_file(&j->files[1 - older], visit, ctx, err);
    j->active = j->files[1].last > j->files[0].last ? 1 : 0;
  }
  if (!ok) {
    close_files(j);
    free(j);
    return NULL;
  }
  uint64_t last = j->files[j->active].last;
  j->next_position = last + 1;
  j->written = j->synced = last;
  pthread_mutex_init(&j->lock, NULL);
  pthread_cond_init(&j->synced_cond, NULL);
  return j;
}

static bool empty_file(journal_file *f, vd_error *err) {
  if (ftruncate(f->fd, 0) != 0)
    return vd_error_set(err, "decision log journal %s: cannot empty it: %s", f->path,
                        strerror(errno));
  f->bytes = f->first = f->last = 0;
  return true;
}

bool vd_journal_clear(vd_journal *j, vd_error *err) {
  pthread_mutex_lock(&j->lock);
  bool ok = empty_file(&j->files[0], err) && empty_file(&j->files[1], err);
  j->active = 0;
  if (ok && j->indexed < j->written) j->indexed = j->written;
  pthread_mutex_unlock(&j->lock);
  return ok;
}

/* Moves appends to the other file once the active one is full and the other's frames are all
 * indexed (lock held). With sync, the active file's frames are synced first, so every frame not
 * yet synced is in the active file when a group sync starts. A failure leaves the active file as
 * it is: appends go on there. */
static void maybe_switch(vd_journal *j) {
  journal_file *active = &j->files[j->active], *other = &j->files[1 - j->active];
  if (active->bytes < VD_JOURNAL_FILE_BYTES || other->last > j->indexed || other->emptying) return;
  if (j->sync && j->synced < active->last) {
    if (fdatasync(active->fd) != 0) return;
    j->synced = active->last;
  }
  if (empty_file(other, NULL)) j->active = 1 - j->active;
}

/* Waits until an fdatasync covers `position` (lock held), syncing itself when none is under way:
 * one call covers every frame written before it started. */
static bool sync_to(vd_journal *j, uint64_t position, vd_error *err) {
  while (j->synced < position) {
    if (j->syncing) {
      pthread_cond_wait(&j->synced_cond, &j->lock);
      continue;
    }
    j->syncing = true;
    uint64_t target = j->written;
    journal_file *f = &j->files[j->active];
    pthread_mutex_unlock(&j->lock);
    int rc = fdatasync(f->fd);
    int sys = errno;
    pthread_mutex_lock(&j->lock);
    j->syncing = false;
    pthread_cond_broadcast(&j->synced_cond);
    if (rc != 0)
      return vd_error_set(err, "decision log journal %s: cannot sync: %s", f->path, strerror(sys));
    if (target > j->synced) j->synced = target;
  }
  return true;
}

uint64_t vd_journal_append(vd_journal *j, const void *payload, size_t len, vd_error *err) {
  if (len > VD_JOURNAL_PAYLOAD_MAX) {
    vd_error_set(err, "decision log journal: a record of %zu bytes is longer than %d", len,
                 VD_JOURNAL_PAYLOAD_MAX);
    return 0;
  }
  unsigned char h[VD_JOURNAL_HEADER];
  pthread_mutex_lock(&j->lock);
  maybe_switch(j);
  journal_file *f = &j->files[j->active];
  uint64_t position = j->next_position;
  vd_le_put32(h, (uint32_t)len);
  vd_le_put64(h + 8, position);
  vd_le_put32(h + 4, frame_crc(h, payload, len));
  struct iovec iov[2] = {{.iov_base = h, .iov_len = sizeof h},
                         {.iov_base = (void *)payload, .iov_len = len}};
  size_t total = sizeof h + len;
  ssize_t wrote;
  do wrote = pwritev(f->fd, iov, 2, (off_t)f->bytes);
  while (wrote < 0 && errno == EINTR);
  if (wrote != (ssize_t)total) {
    /* A short write (the disk is full) leaves part of a frame. The next frame is written where
     * this one began, over it; the cut only keeps a crash from leaving the part behind (and a
     * reader stops at it, the end of what was acknowledged, anyway). */
    int sys = wrote < 0 ? errno : ENOSPC;
    int cut = ftruncate(f->fd, (off_t)f->bytes);
    (void)cut;
    pthread_mutex_unlock(&j->lock);
    vd_error_set(err, "decision log journal %s: cannot write: %s", f->path, strerror(sys));
    return 0;
  }
  j->next_position++;
  f->bytes += total;
  if (!f->first) f->first = position;
  f->last = j->written = position;
  pthread_mutex_unlock(&j->lock);
  return position;
}

bool vd_journal_sync(vd_journal *j, uint64_t position, vd_error *err) {
  if (!j->sync) return true;
  pthread_mutex_lock(&j->lock);
  bool ok = sync_to(j, position, err);
  pthread_mutex_unlock(&j->lock);
  return ok;
}

void vd_journal_indexed(vd_journal *j, uint64_t position) {
  pthread_mutex_lock(&j->lock);
  if (position > j->indexed) j->indexed = position;
  pthread_mutex_unlock(&j->lock);
}

void vd_journal_recycle(vd_journal *j) {
  pthread_mutex_lock(&j->lock);
  journal_file *other = &j->files[1 - j->active];
  if (other->emptying || other->bytes == 0 || other->last > j->indexed) {
    pthread_mutex_unlock(&j->lock);
    return;
  }
  other->emptying = true; /* appends go to the active file meanwhile, and do not switch */
  pthread_mutex_unlock(&j->lock);
  int rc = ftruncate(other->fd, 0);
  pthread_mutex_lock(&j->lock);
  other->emptying = false;
  if (rc == 0) other->bytes = other->first = other->last = 0;
  pthread_mutex_unlock(&j->lock);
}

uint64_t vd_journal_bytes(vd_journal *j) {
  pthread_mutex_lock(&j->lock);
  uint64_t n = j->files[0].bytes + j->files[1].bytes;
  pthread_mutex_unlock(&j->lock);
  return n;
}

void vd_journal_close(vd_journal *j) {
  if (!j) return;
  if (j->files[0].bytes == 0 && j->files[1].bytes == 0) { /* nothing left: no files left behind */
    unlink(j->files[1].path);
    unlink(j->files[0].path); /* while still locked: a new owner creates its own */
  }
  close_files(j); /* closing the descriptor releases the flock */
  pthread_mutex_destroy(&j->lock);
  pthread_cond_destroy(&j->synced_cond);
  free(j);
}
