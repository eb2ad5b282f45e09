#include "vd_journal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include "vd_buf.h"
#include "vd_le.h"

/* One of the two files, and the position of the last frame it holds (0: none). */
typedef struct journal_file {
  int fd;
  char *path;
  uint64_t bytes;
  uint64_t last;
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
  uint64_t damaged; /* bytes skipped at open: damage with good frames after it */
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

/* The position of the first frame in a file's bytes, 0 when it holds none. */
static uint64_t first_position(const unsigned char *data, size_t size) {
  return size >= VD_JOURNAL_HEADER ? vd_le_get64(data + 8) : 0;
}

/* The frame at data[at..], if a whole one with a good checksum is there: its payload length. */
static bool frame_at(const unsigned char *data, size_t size, size_t at, uint32_t *len) {
  if (size - at < VD_JOURNAL_HEADER) return false;
  const unsigned char *h = data + at;
  *len = vd_le_get32(h);
  return *len <= VD_JOURNAL_PAYLOAD_MAX && *len <= size - at - VD_JOURNAL_HEADER &&
         frame_crc(h, h + VD_JOURNAL_HEADER, *len) == vd_le_get32(h + 4);
}

/* After a frame that does not read, the next one that does: a candidate's position must follow
 * the last good one closely before its checksum is computed, so the search is a cheap compare
 * at most offsets. size when there is none (the damage is the file's tail). */
static size_t next_good_frame(const unsigned char *data, size_t size, size_t from, uint64_t last) {
  enum { POSITIONS_AHEAD = 1 << 20 };
  for (size_t at = from; at + VD_JOURNAL_HEADER <= size; at++) {
    uint64_t position = vd_le_get64(data + at + 8);
    uint32_t len;
    if (position > last && position - last <= POSITIONS_AHEAD && frame_at(data, size, at, &len))
      return at;
  }
  return size;
}

/* Passes a file's frames (data[0..size), the file read whole) to visit, from the start. A
 * frame that does not read ends the file when nothing good follows it — a crash while it was
 * written, never acknowledged: the file is cut there. When good frames follow, it is damage (a
 * flipped bit, a bad sector): the bytes are skipped and counted (*damaged), kept in the file, and
 * the frames after it are read. `after`: the last position of the file read before this one (the
 * frames found after damage must follow it). */
static bool scan_file(journal_file *f, const unsigned char *data, size_t size, uint64_t after,
                      vd_journal_visit visit, void *ctx, uint64_t *damaged, vd_error *err) {
  size_t at = 0, end = 0; /* end: after the last good frame */
  uint64_t last = after;
  while (at < size) {
    uint32_t len;
    if (!frame_at(data, size, at, &len)) {
      size_t next = next_good_frame(data, size, at + 1, last);
      if (next == size) break;
      *damaged += next - at;
      at = next;
      continue;
    }
    last = vd_le_get64(data + at + 8);
    if (visit && !visit(ctx, last, data + at + VD_JOURNAL_HEADER, len, err)) return false;
    f->last = last;
    at += VD_JOURNAL_HEADER + len;
    end = at;
  }
  f->bytes = end;
  if (end < size && ftruncate(f->fd, (off_t)end) != 0)
    return vd_error_set(err, "decision log journal %s: cannot cut its torn tail: %s", f->path,
                        strerror(errno));
  return true;
}

/* Reads both files whole and scans them, the older first (the one whose first frame comes
 * first). */
static bool scan_files(vd_journal *j, vd_journal_visit visit, void *ctx, vd_error *err) {
  char *data[2] = {NULL, NULL};
  size_t size[2] = {0, 0};
  bool ok = true;
  for (int i = 0; i < 2 && ok; i++)
    ok = (data[i] = vd_read_file(j->files[i].path, SIZE_MAX - 1, &size[i], err)) != NULL;
  if (ok) {
    uint64_t p0 = first_position((unsigned char *)data[0], size[0]),
             p1 = first_position((unsigned char *)data[1], size[1]);
    int older = p1 && (!p0 || p1 < p0) ? 1 : 0, newer = 1 - older;
    ok = scan_file(&j->files[older], (unsigned char *)data[older], size[older], 0, visit, ctx,
                   &j->damaged, err) &&
         scan_file(&j->files[newer], (unsigned char *)data[newer], size[newer],
                   j->files[older].last, visit, ctx, &j->damaged, err);
  }
  free(data[0]);
  free(data[1]);
  return ok;
}

/* Opens (creating) a journal file: a regular file, never through a symlink (a link planted in
 * the data folder would have the open cut whatever it points to). */
static bool open_file(journal_file *f, const char *db_path, int index, vd_error *err) {
  size_t n = strlen(db_path) + sizeof ".journal-0";
  f->path = malloc(n);
  if (!f->path) return vd_error_set(err, "out of memory");
  snprintf(f->path, n, "%s.journal-%d", db_path, index);
  f->fd = open(f->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
  if (f->fd < 0)
    return vd_error_set(err, "decision log journal %s: cannot open: %s", f->path,
                        errno == ELOOP ? "it is a symbolic link" : strerror(errno));
  struct stat sb;
  if (fstat(f->fd, &sb) != 0 || !S_ISREG(sb.st_mode))
    return vd_error_set(err, "decision log journal %s: not a regular file", f->path);
  return true;
}

/* Takes journal-0's lock, waiting up to wait_ms for another process to let it go. The lock must
 * be on the file the path names when it is granted: a process closing the log removes its empty
 * files, and a lock on a removed file would let two processes own the journal. */
static bool lock_journal(journal_file *f, const char *db_path, unsigned wait_ms, bool *busy,
                         vd_error *err) {
  for (unsigned waited = 0;; waited += 10) {
    if (flock(f->fd, LOCK_EX | LOCK_NB) == 0) {
      struct stat held, named;
      if (fstat(f->fd, &held) == 0 && stat(f->path, &named) == 0 && held.st_ino == named.st_ino &&
          held.st_dev == named.st_dev)
        return true;
      close(f->fd); /* removed or replaced meanwhile: open what the path names now */
      free(f->path);
      f->path = NULL;
      f->fd = -1;
      if (!open_file(f, db_path, 0, err)) return false;
      continue;
    }
    if (errno != EWOULDBLOCK)
      return vd_error_set(err, "decision log journal %s: cannot lock: %s", f->path,
                          strerror(errno));
    if (waited >= wait_ms) break;
    usleep(10 * 1000);
  }
  if (busy) *busy = true;
  return vd_error_set(err,
                      "decision log journal %s: in use by another process (a running verdict "
                      "serve, or a verdict replay, explain or shadow on the same log)",
                      f->path);
}

/* With sync, the files' names must survive a power loss too: the folder is synced once. */
static void sync_folder(const char *db_path) {
  char *copy = strdup(db_path);
  if (!copy) return;
  int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  free(copy);
  if (fd < 0) return;
  (void)fsync(fd);
  close(fd);
}

static void close_files(vd_journal *j) {
  for (int i = 0; i < 2; i++) {
    if (j->files[i].fd >= 0) close(j->files[i].fd);
    free(j->files[i].path);
  }
}

vd_journal *vd_journal_open(const char *db_path, const vd_journal_options *options,
                            vd_journal_visit visit, void *ctx, bool *busy, vd_error *err) {
  if (busy) *busy = false;
  vd_journal *j = calloc(1, sizeof *j);
  if (!j) {
    vd_error_set(err, "out of memory");
    return NULL;
  }
  j->files[0].fd = j->files[1].fd = -1;
  j->sync = options->sync;
  bool ok = open_file(&j->files[0], db_path, 0, err) &&
            lock_journal(&j->files[0], db_path, options->lock_wait_ms, busy, err) &&
            open_file(&j->files[1], db_path, 1, err);
  ok = ok && scan_files(j, visit, ctx, err);
  j->active = j->files[1].last > j->files[0].last ? 1 : 0;
  if (!ok) {
    close_files(j);
    free(j);
    return NULL;
  }
  if (j->sync) sync_folder(db_path);
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
  f->bytes = f->last = 0;
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
  if (rc == 0) other->bytes = other->last = 0;
  pthread_mutex_unlock(&j->lock);
}

uint64_t vd_journal_damaged_bytes(vd_journal *j) { return j->damaged; }

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
