#include "vd_error.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "vd_utf8.h"

/* A message cut to fit ends on a character boundary: cut inside one it is not UTF-8, and jansson
 * refuses it in a JSON error answer, losing the whole error. */
static void end_whole(char *message, int written, size_t size) {
  if (written < (int)size) return;
  size_t len = strlen(message);
  message[vd_utf8_whole_prefix(message, len)] = '\0';
}

static void set_message(vd_error *err, const char *fmt, va_list ap) {
  end_whole(err->message, vsnprintf(err->message, sizeof err->message, fmt, ap),
            sizeof err->message);
}

void vd_error_clear(vd_error *err) {
  if (err) memset(err, 0, sizeof *err);
}

bool vd_error_set(vd_error *err, const char *fmt, ...) {
  if (!err) return false;
  vd_error_clear(err);
  va_list ap;
  va_start(ap, fmt);
  set_message(err, fmt, ap);
  va_end(ap);
  return false;
}

bool vd_error_at(vd_error *err, const char *file, int line, int column, const char *fmt, ...) {
  if (!err) return false;
  vd_error_clear(err);
  snprintf(err->file, sizeof err->file, "%s", file ? file : "");
  err->line = line;
  err->column = column;
  va_list ap;
  va_start(ap, fmt);
  set_message(err, fmt, ap);
  va_end(ap);
  return false;
}

bool vd_error_field(vd_error *err, const char *field, const char *fmt, ...) {
  if (!err) return false;
  vd_error_clear(err);
  snprintf(err->field, sizeof err->field, "%s", field ? field : "");
  va_list ap;
  va_start(ap, fmt);
  set_message(err, fmt, ap);
  va_end(ap);
  return false;
}

void vd_error_prefix(vd_error *err, const char *fmt, ...) {
  if (!err) return;
  char prefix[VD_ERROR_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  /* Room for both parts in full; the result is cut to the message size. */
  char joined[2 * VD_ERROR_MESSAGE_MAX + 2];
  snprintf(joined, sizeof joined, "%s: %s", prefix, err->message);
  end_whole(err->message, snprintf(err->message, sizeof err->message, "%s", joined),
            sizeof err->message);
}

void vd_error_format(const vd_error *err, char *buf, size_t size) {
  if (err->file[0] && err->line > 0)
    snprintf(buf, size, "%s:%d:%d: %s", err->file, err->line, err->column, err->message);
  else if (err->file[0])
    snprintf(buf, size, "%s: %s", err->file, err->message);
  else if (err->field[0])
    snprintf(buf, size, "%s: %s", err->field, err->message);
  else
    snprintf(buf, size, "%s", err->message);
}

bool vd_diags_add(vd_diags *diags, const vd_error *err) {
  if (diags->count == diags->capacity) {
    size_t capacity = diags->capacity ? diags->capacity * 2 : 8;
    vd_error *items = realloc(diags->items, capacity * sizeof *items);
    if (!items) return false;
    diags->items = items;
    diags->capacity = capacity;
  }
  diags->items[diags->count++] = *err;
  return true;
}

void vd_diags_free(vd_diags *diags) {
  free(diags->items);
  diags->items = NULL;
  diags->count = diags->capacity = 0;
}
