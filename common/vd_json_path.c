#include "vd_json_path.h"

#include <string.h>

enum { KEY_MAX = 256 };

/* Copies the component starting at *path into key and advances *path past it and its dot. */
static bool next_component(const char **path, char key[KEY_MAX]) {
  const char *dot = strchr(*path, '.');
  size_t len = dot ? (size_t)(dot - *path) : strlen(*path);
  if (len == 0 || len >= KEY_MAX) return false;
  memcpy(key, *path, len);
  key[len] = '\0';
  *path = dot ? dot + 1 : *path + len;
  return true;
}

json_t *vd_json_get_path(const json_t *root, const char *path) {
  /* each component looked up in place, by length (no copy, no strlen): the model reads its
   * features and the reasons their values this way on every decision */
  const json_t *node = root;
  while (*path) {
    const char *dot = strchr(path, '.');
    size_t len = dot ? (size_t)(dot - path) : strlen(path);
    if (!json_is_object(node) || len == 0 || len >= KEY_MAX) return NULL;
    node = json_object_getn(node, path, len);
    if (!node) return NULL;
    path += dot ? len + 1 : len;
  }
  return (json_t *)node;
}

bool vd_json_set_path(json_t *root, const char *path, json_t *value, vd_error *err) {
  json_t *node = root;
  const char *rest = path;
  char key[KEY_MAX];
  for (;;) {
    if (!json_is_object(node) || !next_component(&rest, key)) {
      json_decref(value);
      return vd_error_field(err, path, "cannot set: a part of the path is not an object");
    }
    if (!*rest) break;
    json_t *child = json_object_get(node, key);
    if (!child) {
      child = json_object();
      if (json_object_set_new(node, key, child) != 0) {
        json_decref(value);
        return vd_error_field(err, path, "out of memory");
      }
    }
    node = child;
  }
  if (json_object_set_new(node, key, value) != 0) return vd_error_field(err, path, "out of memory");
  return true;
}
