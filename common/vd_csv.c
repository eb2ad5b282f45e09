#include "vd_csv.h"

#include <stdlib.h>
#include <string.h>

#include "vd_buf.h"

struct vd_csv {
  char *path;
  char *text;
  size_t size;
  size_t pos;
  size_t line;        /* line of the next character at pos */
  size_t record_line; /* line where the last record started */
  size_t line_start;  /* offset of the current line's first byte (for columns) */
  vd_buf cells;       /* the unescaped fields, NUL separated */
  size_t *offsets;    /* offset of each field in cells */
  const char **fields;
  size_t capacity;
};

vd_csv *vd_csv_open(const char *path, size_t max_size, vd_error *err) {
  vd_csv *csv = calloc(1, sizeof *csv);
  if (!csv) {
    vd_error_set(err, "%s: out of memory", path);
    return NULL;
  }
  csv->path = strdup(path);
  csv->text = vd_read_file(path, max_size, &csv->size, err);
  if (!csv->path || !csv->text) {
    vd_csv_close(csv);
    return NULL;
  }
  csv->line = 1;
  return csv;
}

static bool push_offset(vd_csv *csv, size_t count, size_t offset) {
  if (count == csv->capacity) {
    size_t capacity = csv->capacity ? csv->capacity * 2 : 16;
    size_t *offsets = realloc(csv->offsets, capacity * sizeof *offsets);
    if (!offsets) return false;
    csv->offsets = offsets;
    const char **fields = realloc(csv->fields, capacity * sizeof *fields);
    if (!fields) return false;
    csv->fields = fields;
    csv->capacity = capacity;
  }
  csv->offsets[count] = offset;
  return true;
}

/* A field is a C string to every reader: a NUL would silently cut it ("12\0abc" read as 12). */
#define NUL_IN_FIELD "a NUL byte in a field (CSV is text)"

static int fail(vd_csv *csv, vd_error *err, const char *why) {
  vd_error_at(err, csv->path, (int)csv->line, (int)(csv->pos - csv->line_start + 1), "%s", why);
  return -1;
}

int vd_csv_next(vd_csv *csv, const char *const **fields, size_t *count, vd_error *err) {
  if (csv->pos >= csv->size) return 0;
  vd_buf_reset(&csv->cells);
  csv->record_line = csv->line;
  size_t n = 0;
  for (;;) { /* one field per iteration */
    if (!push_offset(csv, n, csv->cells.len)) return fail(csv, err, "out of memory");
    n++;
    if (csv->pos < csv->size && csv->text[csv->pos] == '"') {
      csv->pos++;
      for (;;) {
        if (csv->pos >= csv->size) return fail(csv, err, "unterminated quoted field");
        char c = csv->text[csv->pos++];
        if (c == '\0') {
          csv->pos--;
          return fail(csv, err, NUL_IN_FIELD);
        }
        if (c == '"') {
          if (csv->pos < csv->size && csv->text[csv->pos] == '"') {
            vd_buf_append(&csv->cells, "\"", 1);
            csv->pos++;
            continue;
          }
          break;
        }
        if (c == '\n') {
          csv->line++;
          csv->line_start = csv->pos;
        }
        vd_buf_append(&csv->cells, &c, 1);
      }
      if (csv->pos < csv->size && csv->text[csv->pos] != ',' && csv->text[csv->pos] != '\n' &&
          !(csv->text[csv->pos] == '\r' && csv->pos + 1 < csv->size &&
            csv->text[csv->pos + 1] == '\n'))
        return fail(csv, err, "unexpected text after a closing quote");
    } else {
      size_t start = csv->pos;
      while (csv->pos < csv->size && csv->text[csv->pos] != ',' && csv->text[csv->pos] != '\n')
        csv->pos++;
      size_t end = csv->pos;
      if (end > start && csv->text[end - 1] == '\r' && end < csv->size) end--; /* CRLF */
      if (memchr(csv->text + start, '"', end - start))
        return fail(csv, err, "a quote inside an unquoted field");
      const char *nul = memchr(csv->text + start, '\0', end - start);
      if (nul) {
        csv->pos = (size_t)(nul - csv->text);
        return fail(csv, err, NUL_IN_FIELD);
      }
      vd_buf_append(&csv->cells, csv->text + start, end - start);
    }
    vd_buf_append(&csv->cells, "", 1); /* the field's terminating NUL */
    if (csv->pos < csv->size && csv->text[csv->pos] == '\r') csv->pos++;
    if (csv->pos >= csv->size) break;
    char sep = csv->text[csv->pos++];
    if (sep == '\n') {
      csv->line++;
      csv->line_start = csv->pos;
      break;
    }
  }
  if (csv->cells.oom) return fail(csv, err, "out of memory");
  for (size_t i = 0; i < n; i++) csv->fields[i] = csv->cells.data + csv->offsets[i];
  *fields = csv->fields;
  *count = n;
  return 1;
}

size_t vd_csv_line(const vd_csv *csv) { return csv->record_line; }

const char *vd_csv_path(const vd_csv *csv) { return csv->path; }

void vd_csv_close(vd_csv *csv) {
  if (!csv) return;
  free(csv->path);
  free(csv->text);
  vd_buf_free(&csv->cells);
  free(csv->offsets);
  free(csv->fields);
  free(csv);
}
