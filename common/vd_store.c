#include "vd_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vd_buf.h"

struct vd_store_txn {
  char tmp[PATH_MAX];   /* the temporary folder being filled */
  char final[PATH_MAX]; /* where it goes on commit */
  char kind_dir[PATH_MAX];
};

static bool valid_kind(const char *s) {
  if (!s || !*s) return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
      return false;
  return true;
}

static bool valid_version(const char *s) {
  if (!s || !*s || *s == '.') return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '.' || *s == '_' || *s == '-'))
      return false;
  return true;
}

/* A relative path whose components are neither empty, "." nor "..". */
static bool valid_name(const char *name) {
  if (!name || !*name) return false;
  const char *p = name;
  for (;;) {
    const char *slash = strchr(p, '/');
    size_t len = slash ? (size_t)(slash - p) : strlen(p);
    if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
      return false;
    if (!slash) return true;
    p = slash + 1;
  }
}

static bool check_names(const char *kind, const char *version, vd_error *err) {
  if (!valid_kind(kind))
    return vd_error_set(err, "store: kind '%s' must be [a-z0-9_-]+", kind ? kind : "");
  if (!valid_version(version))
    return vd_error_set(err, "store: version '%s' must be [A-Za-z0-9._-]+, not starting with '.'",
                        version ? version : "");
  return true;
}

static bool join(char *out, size_t size, const char *a, const char *b, vd_error *err) {
  int n = snprintf(out, size, "%s/%s", a, b);
  if (n < 0 || (size_t)n >= size) return vd_error_set(err, "store: path too long: %s/%s", a, b);
  return true;
}

static bool fsync_path(const char *path, int flags, vd_error *err) {
  int fd = open(path, flags | O_CLOEXEC);
  if (fd < 0) return vd_error_set(err, "store: cannot open %s: %s", path, strerror(errno));
  bool ok = fsync(fd) == 0;
  if (!ok) vd_error_set(err, "store: cannot fsync %s: %s", path, strerror(errno));
  close(fd);
  return ok;
}

static bool make_dir(const char *path, vd_error *err) {
  if (mkdir(path, 0755) == 0 || errno == EEXIST) {
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) return true;
    return vd_error_set(err, "store: %s exists and is not a folder", path);
  }
  return vd_error_set(err, "store: cannot create folder %s: %s", path, strerror(errno));
}

/* Creates the folders leading to `name` inside root. */
static bool make_parents(const char *root, const char *name, vd_error *err) {
  char path[PATH_MAX];
  if (!join(path, sizeof path, root, name, err)) return false;
  for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
    *p = '\0';
    bool ok = make_dir(path, err);
    *p = '/';
    if (!ok) return false;
  }
  return true;
}

void vd_remove_tree(const char *path) {
  DIR *d = opendir(path);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      char child[PATH_MAX];
      if (snprintf(child, sizeof child, "%s/%s", path, e->d_name) >= (int)sizeof child) continue;
      struct stat sb;
      if (lstat(child, &sb) == 0 && S_ISDIR(sb.st_mode))
        vd_remove_tree(child);
      else
        unlink(child);
    }
    closedir(d);
  }
  rmdir(path);
}

vd_store_txn *vd_store_begin(const char *data_dir, const char *kind, const char *version,
                             vd_error *err) {
  if (!data_dir || !*data_dir) {
    vd_error_set(err, "store: no data folder given");
    return NULL;
  }
  if (!check_names(kind, version, err)) return NULL;
  vd_store_txn *t = calloc(1, sizeof *t);
  if (!t) {
    vd_error_set(err, "out of memory");
    return NULL;
  }
  char tmp_name[NAME_MAX + 1];
  snprintf(tmp_name, sizeof tmp_name, ".tmp-%.200s-XXXXXX", version);
  if (!join(t->kind_dir, sizeof t->kind_dir, data_dir, kind, err) ||
      !join(t->final, sizeof t->final, t->kind_dir, version, err) ||
      !join(t->tmp, sizeof t->tmp, t->kind_dir, tmp_name, err) || !make_dir(t->kind_dir, err)) {
    free(t);
    return NULL;
  }
  if (!mkdtemp(t->tmp)) {
    vd_error_set(err, "store: cannot create a folder in %s: %s", t->kind_dir, strerror(errno));
    free(t);
    return NULL;
  }
  return t;
}

/* Writes `size` bytes from a buffer or copies from src_fd (when src_fd >= 0) into a new file. */
static bool write_file(vd_store_txn *t, const char *name, const void *bytes, size_t size,
                       int src_fd, mode_t mode, vd_error *err) {
  if (!valid_name(name))
    return vd_error_set(err, "store: invalid file name '%s' (a relative path without . or ..)",
                        name ? name : "");
  if (!make_parents(t->tmp, name, err)) return false;
  char path[PATH_MAX];
  if (!join(path, sizeof path, t->tmp, name, err)) return false;
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return vd_error_set(err, "store: cannot create %s: %s", path, strerror(errno));
  bool ok = true;
  char chunk[65536];
  const char *p = bytes;
  for (;;) {
    ssize_t n;
    if (src_fd >= 0) {
      n = read(src_fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        ok = vd_error_set(err, "store: cannot read the source of %s: %s", name, strerror(errno));
        break;
      }
      p = chunk;
    } else {
      n = (ssize_t)size;
      size = 0;
    }
    if (n == 0) break;
    while (n > 0) {
      ssize_t w = write(fd, p, (size_t)n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        ok = vd_error_set(err, "store: cannot write %s: %s", path, strerror(errno));
        break;
      }
      p += w;
      n -= w;
    }
    if (!ok || src_fd < 0) break;
  }
  if (ok && fsync(fd) != 0)
    ok = vd_error_set(err, "store: cannot fsync %s: %s", path, strerror(errno));
  if (close(fd) != 0 && ok)
    ok = vd_error_set(err, "store: cannot close %s: %s", path, strerror(errno));
  return ok;
}

bool vd_store_add_bytes(vd_store_txn *t, const char *name, const void *bytes, size_t size,
                        vd_error *err) {
  return write_file(t, name, bytes, size, -1, 0644, err);
}

bool vd_store_add_file(vd_store_txn *t, const char *name, const char *src_path, vd_error *err) {
  vd_error why = {0};
  int fd = vd_open_regular(src_path, &why); /* never blocks on a FIFO */
  if (fd < 0) return vd_error_set(err, "store: %s", why.message);
  struct stat sb;
  bool ok;
  if (fstat(fd, &sb) != 0)
    ok = vd_error_set(err, "store: cannot read %s: %s", src_path, strerror(errno));
  else
    ok = write_file(t, name, NULL, 0, fd, sb.st_mode & 0777, err);
  close(fd);
  return ok;
}

bool vd_store_add_tree(vd_store_txn *t, const char *name, const char *src_dir, vd_error *err) {
  bool root = !name || !*name;
  if (!root && !valid_name(name)) return vd_error_set(err, "store: invalid folder name '%s'", name);
  DIR *d = opendir(src_dir);
  if (!d) return vd_error_set(err, "store: cannot read folder %s: %s", src_dir, strerror(errno));
  bool ok = true;
  struct dirent *e;
  while (ok && (e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    char src[PATH_MAX], dst[PATH_MAX];
    ok = join(src, sizeof src, src_dir, e->d_name, err);
    if (ok && root)
      snprintf(dst, sizeof dst, "%s", e->d_name);
    else if (ok)
      ok = join(dst, sizeof dst, name, e->d_name, err);
    if (!ok) break;
    struct stat sb;
    if (stat(src, &sb) != 0) {
      ok = vd_error_set(err, "store: cannot stat %s: %s", src, strerror(errno));
    } else if (S_ISDIR(sb.st_mode)) {
      char here[PATH_MAX];
      ok = join(here, sizeof here, t->tmp, dst, err) && make_dir(here, err) &&
           vd_store_add_tree(t, dst, src, err);
    } else if (S_ISREG(sb.st_mode)) {
      ok = vd_store_add_file(t, dst, src, err);
    } else {
      ok = vd_error_set(err, "store: %s is neither a file nor a folder", src);
    }
  }
  closedir(d);
  return ok;
}

/* fsyncs every folder of the tree, so the renamed version is complete after a power loss too. */
static bool fsync_dirs(const char *path, vd_error *err) {
  DIR *d = opendir(path);
  if (!d) return vd_error_set(err, "store: cannot read folder %s: %s", path, strerror(errno));
  bool ok = true;
  struct dirent *e;
  while (ok && (e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    char child[PATH_MAX];
    struct stat sb;
    ok = join(child, sizeof child, path, e->d_name, err);
    if (ok && lstat(child, &sb) == 0 && S_ISDIR(sb.st_mode)) ok = fsync_dirs(child, err);
  }
  closedir(d);
  return ok && fsync_path(path, O_RDONLY | O_DIRECTORY, err);
}

bool vd_store_commit(vd_store_txn *t, char *path, size_t size, vd_error *err) {
  bool ok = fsync_dirs(t->tmp, err);
  if (ok && rename(t->tmp, t->final) != 0) {
    struct stat sb;
    /* someone stored this version first: theirs is the same content, keep it */
    if ((errno == EEXIST || errno == ENOTEMPTY) && stat(t->final, &sb) == 0 && S_ISDIR(sb.st_mode))
      vd_remove_tree(t->tmp);
    else
      ok = vd_error_set(err, "store: cannot move %s to %s: %s", t->tmp, t->final, strerror(errno));
  }
  if (ok) ok = fsync_path(t->kind_dir, O_RDONLY | O_DIRECTORY, err);
  if (ok && path && (size_t)snprintf(path, size, "%s", t->final) >= size)
    ok = vd_error_set(err, "store: path too long: %s", t->final);
  if (!ok) vd_remove_tree(t->tmp);
  free(t);
  return ok;
}

void vd_store_abort(vd_store_txn *t) {
  if (!t) return;
  vd_remove_tree(t->tmp);
  free(t);
}

bool vd_store_path(const char *data_dir, const char *kind, const char *version, char *path,
                   size_t size, vd_error *err) {
  if (!check_names(kind, version, err)) return false;
  char dir[PATH_MAX], full[PATH_MAX];
  if (!join(dir, sizeof dir, data_dir, kind, err) || !join(full, sizeof full, dir, version, err))
    return false;
  struct stat sb;
  if (stat(full, &sb) != 0 || !S_ISDIR(sb.st_mode))
    return vd_error_set(err, "no %s version %s in %s", kind, version, data_dir);
  if ((size_t)snprintf(path, size, "%s", full) >= size)
    return vd_error_set(err, "store: path too long: %s", full);
  return true;
}
