#include "vd_batch_input.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "vd_buf.h"
#include "vd_csv.h"
#include "vd_json_path.h"
#include "vd_number.h"
#include "vd_suggest.h"
#include "vd_utf8.h"
#include "vd_yaml.h"

enum { LIST_SEPARATOR = '|' };
static const size_t csv_max_bytes = (size_t)1 << 34; /* 16 GiB: the CSV reader holds the file */

struct vd_batch_mapping {
  vd_yaml_doc *doc;  /* NULL for an empty mapping */
  json_t *columns;   /* column → field path (borrowed from doc, or NULL) */
  json_t *constants; /* field path → JSON value (borrowed from doc, or NULL) */
  json_t *ignore;    /* [column] (borrowed from doc, or NULL) */
  json_t *sets;      /* field path → string, from the command line (owned) */
};

/* How one CSV column becomes a field. */
typedef struct column {
  const char *header;
  const vd_schema_field *field; /* NULL: ignored */
} column;

struct vd_batch_reader {
  vd_batch_format format;
  char *path;
  const vd_schema *schema;
  /* CSV */
  vd_csv *csv;
  column *columns;
  size_t column_count;
  char **headers;     /* copies: vd_csv's fields live only until its next call */
  json_t *constants;  /* field path → converted value, applied to every row */
  bool synthesise_id; /* subject.id = "line-<N>" */
  size_t total_lines; /* for progress */
  size_t last_line;
  json_t *column_map; /* column → field, for the summary */
  char **ignored;
  size_t ignored_count;
  /* JSON Lines */
  FILE *file;
  char *buf;
  size_t buf_size;
  size_t line;
  long long file_size;
  long long offset;
};

const char *vd_batch_format_name(vd_batch_format format) {
  switch (format) {
    case VD_BATCH_CSV:
      return "csv";
    case VD_BATCH_JSONL:
      return "jsonl";
    case VD_BATCH_AUTO:
      break;
  }
  return "auto";
}

bool vd_batch_format_parse(const char *name, vd_batch_format *format) {
  if (strcmp(name, "csv") == 0)
    *format = VD_BATCH_CSV;
  else if (strcmp(name, "jsonl") == 0)
    *format = VD_BATCH_JSONL;
  else if (strcmp(name, "auto") == 0)
    *format = VD_BATCH_AUTO;
  else
    return false;
  return true;
}

/* --- the mapping --------------------------------------------------------------------------- */

static bool check_string_values(const vd_yaml_doc *doc, const json_t *obj, const char *what,
                                vd_error *err) {
  const char *key;
  json_t *value;
  json_object_foreach((json_t *)obj, key, value) if (!json_is_string(value)) return vd_yaml_error(
      doc, obj, key, 0, err, "%s: the value of '%s' must be a string", what, key);
  return true;
}

static bool check_mapping(vd_batch_mapping *m, vd_error *err) {
  json_t *root = vd_yaml_root(m->doc);
  if (json_is_null(root)) return true; /* an empty file maps nothing */
  if (!json_is_object(root))
    return vd_yaml_error(m->doc, NULL, NULL, 0, err, "a batch mapping is a mapping with 'csv:'");
  const char *key;
  json_t *value;
  json_object_foreach(root, key, value) if (strcmp(key, "csv") != 0) return vd_yaml_error(
      m->doc, root, key, 0, err, "unknown key '%s' (a batch mapping has 'csv:')", key);
  json_t *csv = json_object_get(root, "csv");
  if (!csv || json_is_null(csv)) return true;
  if (!json_is_object(csv))
    return vd_yaml_error(m->doc, root, "csv", 0, err,
                         "'csv' must be a mapping with columns, constants and ignore");
  static const char *const keys[] = {"columns", "constants", "ignore"};
  json_object_foreach(csv, key, value) {
    bool known = false;
    for (size_t i = 0; i < 3; i++) known = known || strcmp(key, keys[i]) == 0;
    if (!known) {
      const char *s = vd_suggest(key, keys, 3);
      return vd_yaml_error(m->doc, csv, key, 0, err, "unknown key '%s'%s%s%s", key,
                           s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
    }
  }
  m->columns = json_object_get(csv, "columns");
  m->constants = json_object_get(csv, "constants");
  m->ignore = json_object_get(csv, "ignore");
  if (m->columns && !json_is_object(m->columns))
    return vd_yaml_error(m->doc, csv, "columns", 0, err, "'columns' maps column → field path");
  if (m->constants && !json_is_object(m->constants))
    return vd_yaml_error(m->doc, csv, "constants", 0, err, "'constants' maps field path → value");
  if (m->ignore && !json_is_array(m->ignore))
    return vd_yaml_error(m->doc, csv, "ignore", 0, err, "'ignore' is a list of column names");
  if (m->columns && !check_string_values(m->doc, m->columns, "columns", err)) return false;
  size_t i;
  json_array_foreach(m->ignore, i, value) if (!json_is_string(value)) return vd_yaml_error(
      m->doc, m->ignore, NULL, i, err, "'ignore' lists column names (strings)");
  return true;
}

vd_batch_mapping *vd_batch_mapping_load(const char *path, vd_error *err) {
  vd_batch_mapping *m = calloc(1, sizeof *m);
  if (!m || !(m->sets = json_object())) {
    free(m);
    vd_error_set(err, "out of memory");
    return NULL;
  }
  if (path) {
    m->doc = vd_yaml_load_file(path, err);
    if (!m->doc || !check_mapping(m, err)) {
      vd_batch_mapping_free(m);
      return NULL;
    }
  }
  return m;
}

bool vd_batch_mapping_set(vd_batch_mapping *m, const char *assignment, vd_error *err) {
  const char *eq = strchr(assignment, '=');
  if (!eq || eq == assignment)
    return vd_error_set(err, "--set '%s': expected FIELD=VALUE, e.g. subject.country=US",
                        assignment);
  char field[256];
  if ((size_t)(eq - assignment) >= sizeof field)
    return vd_error_set(err, "--set: field name too long");
  memcpy(field, assignment, (size_t)(eq - assignment));
  field[eq - assignment] = '\0';
  json_t *value = json_string(eq + 1);
  if (!value) return vd_error_set(err, "--set %s: the value is not valid UTF-8", field);
  json_object_set_new(m->sets, field, value);
  return true;
}

void vd_batch_mapping_free(vd_batch_mapping *m) {
  if (!m) return;
  vd_yaml_free(m->doc);
  json_decref(m->sets);
  free(m);
}

/* --- cell conversion ----------------------------------------------------------------------- */

/* A cell as quoted in a message (which goes into JSON): its first 64 bytes cut on a character
 * boundary, bytes that are not UTF-8 as \xHH. Returns out. */
static const char *quoted_cell(const char *text, char *out, size_t size) {
  vd_utf8_escape_invalid(text, out, size);
  return out;
}

/* One scalar cell by type; NULL with err on a bad value. */
static json_t *convert_scalar(vd_field_type type, const char *text, vd_error *err) {
  char shown[65];
  switch (type) {
    case VD_FIELD_BOOL:
      if (strcmp(text, "1") == 0 || strcasecmp(text, "true") == 0) return json_true();
      if (strcmp(text, "0") == 0 || strcasecmp(text, "false") == 0) return json_false();
      vd_error_set(err, "expected bool (1, 0, true or false), got \"%s\"",
                   quoted_cell(text, shown, sizeof shown));
      return NULL;
    case VD_FIELD_INT:
    case VD_FIELD_DOUBLE: {
      /* read as a JSON body's number is (vd_number), so a CSV row and a JSON line agree */
      vd_number n;
      vd_error why = {0};
      if (vd_number_parse(text, strlen(text), &n, &why))
        /* "3.0" for an int: the schema decides whether it is integral */
        return type == VD_FIELD_INT && n.is_integer ? json_integer(n.integer) : json_real(n.real);
      vd_error_set(err, "expected %s, got \"%s\": %s", type == VD_FIELD_INT ? "int" : "a number",
                   quoted_cell(text, shown, sizeof shown), why.message);
      return NULL;
    }
    case VD_FIELD_STRING:
    case VD_FIELD_ENUM:
    case VD_FIELD_TIMESTAMP:
    case VD_FIELD_LIST:
      break;
  }
  json_t *s = json_string(text);
  if (!s) vd_error_set(err, "not valid UTF-8");
  return s;
}

/* A cell for `field`; *value NULL (and true) for an empty cell. */
static bool convert_cell(const vd_schema_field *field, const char *text, json_t **value,
                         vd_error *err) {
  *value = NULL;
  if (!*text) return true;
  if (vd_schema_field_type(field) != VD_FIELD_LIST)
    return (*value = convert_scalar(vd_schema_field_type(field), text, err)) != NULL;
  json_t *list = json_array();
  vd_field_type element = vd_schema_field_element_type(field);
  char *copy = strdup(text);
  bool ok = copy != NULL;
  for (char *p = copy; ok && p;) {
    char *sep = strchr(p, LIST_SEPARATOR);
    if (sep) *sep = '\0';
    json_t *v = convert_scalar(element, p, err);
    ok = v && json_array_append_new(list, v) == 0;
    p = sep ? sep + 1 : NULL;
  }
  free(copy);
  if (!ok) {
    json_decref(list);
    return false;
  }
  *value = list;
  return true;
}

/* --- opening ------------------------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* By extension, else by the first non-blank byte ('{' is JSON Lines). */
static vd_batch_format detect_format(const char *path) {
  if (ends_with(path, ".csv")) return VD_BATCH_CSV;
  if (ends_with(path, ".jsonl") || ends_with(path, ".ndjson") || ends_with(path, ".json"))
    return VD_BATCH_JSONL;
  FILE *f = vd_fopen_regular(path, NULL); /* the reader says why it cannot be read */
  int c = EOF;
  if (f) {
    while ((c = fgetc(f)) != EOF && (c == ' ' || c == '\t' || c == '\r' || c == '\n')) continue;
    fclose(f);
  }
  return c == '{' ? VD_BATCH_JSONL : VD_BATCH_CSV;
}

static size_t count_lines(const char *path) {
  FILE *f = vd_fopen_regular(path, NULL);
  if (!f) return 0;
  char chunk[65536];
  size_t n, lines = 0;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    for (const char *p = chunk; (p = memchr(p, '\n', (size_t)(chunk + n - p))); p++) lines++;
  fclose(f);
  return lines;
}

static bool is_ignored(const vd_batch_mapping *m, const char *header) {
  size_t i;
  json_t *v;
  json_array_foreach(m->ignore, i, v) if (strcmp(json_string_value(v), header) == 0) return true;
  return false;
}

/* The field a path names, refusing candidate.* (each row is scored against every candidate). */
static const vd_schema_field *csv_field(const vd_schema *schema, const char *path, const char *what,
                                        vd_error *err) {
  const vd_schema_field *f = vd_schema_find(schema, path);
  if (!f) {
    const char *names[512];
    size_t n = vd_schema_field_count(schema);
    if (n > 512) n = 512;
    for (size_t i = 0; i < n; i++) names[i] = vd_schema_field_path(vd_schema_field_at(schema, i));
    const char *s = vd_suggest(path, names, n);
    vd_error_set(err, "%s: '%s' is not a field of schema %s%s%s%s", what, path,
                 vd_schema_name(schema), s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
    return NULL;
  }
  if (vd_schema_field_section(f) == VD_SECTION_CANDIDATE) {
    vd_error_set(err,
                 "%s: '%s' is a candidate field; CSV rows fill subject.* and context.* only "
                 "(each row is scored against every candidate of the deployment)",
                 what, path);
    return NULL;
  }
  return f;
}

/* The character column where header `index` starts (headers are rarely quoted). */
static int header_column(const vd_batch_reader *r, size_t index) {
  size_t col = 1;
  for (size_t j = 0; j < index; j++) col += strlen(r->headers[j]) + 1;
  return (int)col;
}

static bool resolve_column(vd_batch_reader *r, const vd_batch_mapping *m, size_t index,
                           const char *header, vd_error *err) {
  char where[96], shown[41];
  snprintf(where, sizeof where, "column %zu ('%s')", index + 1,
           quoted_cell(header, shown, sizeof shown));
  int col = header_column(r, index);
  column *c = &r->columns[index];
  c->header = r->headers[index];
  json_t *mapped = m->columns ? json_object_get(m->columns, header) : NULL;
  vd_error why = {0};
  if (mapped) {
    c->field = csv_field(r->schema, json_string_value(mapped), where, &why);
    if (!c->field) return vd_error_at(err, r->path, 1, col, "%s", why.message);
  } else if (is_ignored(m, header)) {
    c->field = NULL;
    r->ignored[r->ignored_count++] = r->headers[index];
    return true;
  } else {
    char path[300];
    snprintf(path, sizeof path, "subject.%s", header);
    const vd_schema_field *f = vd_schema_find(r->schema, header);
    if (!f) f = vd_schema_find(r->schema, path);
    if (!f)
      return vd_error_at(err, r->path, 1, col,
                         "%s fills no field of schema %s: map it under csv.columns in the batch "
                         "mapping, or list it under csv.ignore",
                         where, vd_schema_name(r->schema));
    c->field = csv_field(r->schema, vd_schema_field_path(f), where, &why);
    if (!c->field) return vd_error_at(err, r->path, 1, col, "%s", why.message);
  }
  for (size_t j = 0; j < index; j++)
    if (r->columns[j].field == c->field)
      return vd_error_at(err, r->path, 1, col, "columns %zu ('%s') and %zu ('%s') both fill %s",
                         j + 1, r->columns[j].header, index + 1, header,
                         vd_schema_field_path(c->field));
  json_object_set_new(r->column_map, header, json_string(vd_schema_field_path(c->field)));
  return true;
}

/* Converts the mapping's constants and --set values into r->constants. */
static bool resolve_constants(vd_batch_reader *r, const vd_batch_mapping *m, vd_error *err) {
  const char *path;
  json_t *value;
  json_object_foreach(m->constants, path, value) {
    vd_error why = {0};
    if (!csv_field(r->schema, path, "csv.constants", &why)) {
      int line = 0, col = 0;
      vd_yaml_where_key(m->doc, m->constants, path, &line, &col);
      return vd_error_at(err, vd_yaml_name(m->doc), line, col, "%s", why.message);
    }
    json_object_set(r->constants, path, value);
  }
  json_object_foreach(m->sets, path, value) {
    char what[300];
    snprintf(what, sizeof what, "--set %s", path);
    const vd_schema_field *f = csv_field(r->schema, path, what, err);
    json_t *converted = NULL;
    if (!f) return false;
    if (!convert_cell(f, json_string_value(value), &converted, err)) {
      vd_error_prefix(err, "%s", what);
      return false;
    }
    if (converted) json_object_set_new(r->constants, path, converted);
  }
  return true;
}

static bool open_csv(vd_batch_reader *r, const vd_batch_mapping *m, vd_error *err) {
  r->csv = vd_csv_open(r->path, csv_max_bytes, err);
  if (!r->csv) return false;
  const char *const *fields = NULL;
  size_t count = 0;
  int rc = vd_csv_next(r->csv, &fields, &count, err);
  if (rc < 0) return false;
  if (rc == 0 || (count == 1 && !fields[0][0]))
    return vd_error_at(err, r->path, 1, 1, "the CSV file has no header line");
  r->column_count = count;
  r->columns = calloc(count, sizeof *r->columns);
  r->headers = calloc(count, sizeof *r->headers);
  r->ignored = calloc(count, sizeof *r->ignored);
  if (!r->columns || !r->headers || !r->ignored) return vd_error_set(err, "out of memory");
  for (size_t i = 0; i < count; i++) {
    /* a UTF-8 byte order mark (spreadsheet exports) is not part of the first column's name */
    const char *name =
        i == 0 && strncmp(fields[0], "\xEF\xBB\xBF", 3) == 0 ? fields[0] + 3 : fields[i];
    if (!(r->headers[i] = strdup(name))) return vd_error_set(err, "out of memory");
  }
  for (size_t i = 0; i < count; i++)
    if (!resolve_column(r, m, i, r->headers[i], err)) return false;
  if (!resolve_constants(r, m, err)) return false;
  const vd_schema_field *id = vd_schema_find(r->schema, "subject.id");
  bool id_given = json_object_get(r->constants, "subject.id") != NULL;
  for (size_t i = 0; i < count; i++) id_given = id_given || (id && r->columns[i].field == id);
  r->synthesise_id = id && !id_given;
  r->total_lines = count_lines(r->path);
  return true;
}

vd_batch_reader *vd_batch_reader_open(const char *path, vd_batch_format format,
                                      const vd_schema *schema, const vd_batch_mapping *mapping,
                                      vd_error *err) {
  vd_batch_reader *r = calloc(1, sizeof *r);
  if (!r || !(r->path = strdup(path)) || !(r->constants = json_object()) ||
      !(r->column_map = json_object())) {
    vd_batch_reader_close(r);
    vd_error_set(err, "out of memory");
    return NULL;
  }
  r->schema = schema;
  r->format = format == VD_BATCH_AUTO ? detect_format(path) : format;
  bool ok;
  if (r->format == VD_BATCH_CSV) {
    ok = open_csv(r, mapping, err);
  } else {
    r->file = vd_fopen_regular(path, err);
    ok = r->file != NULL;
    struct stat sb;
    if (ok && fstat(fileno(r->file), &sb) == 0) r->file_size = (long long)sb.st_size;
  }
  if (!ok) {
    vd_batch_reader_close(r);
    return NULL;
  }
  return r;
}

/* --- reading ------------------------------------------------------------------------------- */

static void add_problem(vd_diags *diags, const char *file, size_t line, const char *field,
                        const char *message) {
  vd_error e = {0};
  vd_error_at(&e, file, (int)line, 0, "%s", message);
  if (field) snprintf(e.field, sizeof e.field, "%s", field);
  vd_diags_add(diags, &e);
}

static vd_batch_next next_csv(vd_batch_reader *r, json_t **request, size_t *line, vd_diags *diags,
                              vd_error *err) {
  const char *const *fields = NULL;
  size_t count = 0;
  int rc;
  do { /* blank lines are no rows */
    rc = vd_csv_next(r->csv, &fields, &count, err);
  } while (rc > 0 && count == 1 && !fields[0][0] && r->column_count > 1);
  if (rc < 0) return VD_BATCH_FATAL;
  if (rc == 0) return VD_BATCH_END;
  *line = r->last_line = vd_csv_line(r->csv);
  if (count != r->column_count) {
    char msg[128];
    snprintf(msg, sizeof msg, "%zu fields, but the header has %zu", count, r->column_count);
    add_problem(diags, r->path, *line, NULL, msg);
    return VD_BATCH_REJECT;
  }
  json_t *req = json_pack("{s:{}, s:{}}", "subject", "context");
  bool ok = true;
  const char *path;
  json_t *value;
  json_object_foreach(r->constants, path, value)
      vd_json_set_path(req, path, json_incref(value), NULL);
  for (size_t i = 0; i < count; i++) {
    const vd_schema_field *f = r->columns[i].field;
    if (!f) continue;
    json_t *v = NULL;
    vd_error e = {0};
    if (!convert_cell(f, fields[i], &v, &e)) {
      char msg[VD_ERROR_MESSAGE_MAX + 64];
      snprintf(msg, sizeof msg, "column %zu (%s): %s", i + 1, r->columns[i].header, e.message);
      add_problem(diags, r->path, *line, vd_schema_field_path(f), msg);
      ok = false;
    } else if (v) {
      vd_json_set_path(req, vd_schema_field_path(f), v, NULL);
    }
  }
  if (r->synthesise_id) {
    char id[32];
    snprintf(id, sizeof id, "line-%zu", *line);
    vd_json_set_path(req, "subject.id", json_string(id), NULL);
  }
  if (json_object_size(json_object_get(req, "context")) == 0) json_object_del(req, "context");
  if (!ok) {
    json_decref(req);
    return VD_BATCH_REJECT;
  }
  *request = req;
  return VD_BATCH_ROW;
}

static vd_batch_next next_jsonl(vd_batch_reader *r, json_t **request, size_t *line, vd_diags *diags,
                                vd_error *err) {
  for (;;) {
    ssize_t n = getline(&r->buf, &r->buf_size, r->file);
    if (n < 0) {
      if (ferror(r->file)) {
        vd_error_set(err, "cannot read %s: %s", r->path, strerror(errno));
        return VD_BATCH_FATAL;
      }
      return VD_BATCH_END;
    }
    r->line++;
    r->offset += n;
    if (strspn(r->buf, " \t\r\n") == (size_t)n) continue; /* blank */
    *line = r->line;
    json_error_t jerr;
    json_t *req = json_loadb(r->buf, (size_t)n, 0, &jerr);
    if (!req) {
      char msg[256];
      snprintf(msg, sizeof msg, "invalid JSON at column %d: %s", jerr.column, jerr.text);
      vd_error e = {0};
      vd_error_at(&e, r->path, (int)r->line, jerr.column, "%s", msg);
      vd_diags_add(diags, &e);
      return VD_BATCH_REJECT;
    }
    if (!json_is_object(req)) {
      json_decref(req);
      add_problem(diags, r->path, r->line, NULL, "a request must be a JSON object");
      return VD_BATCH_REJECT;
    }
    *request = req;
    return VD_BATCH_ROW;
  }
}

vd_batch_next vd_batch_reader_next(vd_batch_reader *r, json_t **request, size_t *line,
                                   vd_diags *diags, vd_error *err) {
  *request = NULL;
  *line = 0;
  return r->format == VD_BATCH_CSV ? next_csv(r, request, line, diags, err)
                                   : next_jsonl(r, request, line, diags, err);
}

vd_batch_format vd_batch_reader_format(const vd_batch_reader *r) { return r->format; }

double vd_batch_reader_progress(const vd_batch_reader *r) {
  double p = 0;
  if (r->format == VD_BATCH_CSV && r->total_lines)
    p = (double)r->last_line / (double)r->total_lines;
  else if (r->format == VD_BATCH_JSONL && r->file_size > 0)
    p = (double)r->offset / (double)r->file_size;
  return p > 1 ? 1 : p;
}

size_t vd_batch_reader_ignored_count(const vd_batch_reader *r) { return r->ignored_count; }

const char *vd_batch_reader_ignored(const vd_batch_reader *r, size_t index) {
  return index < r->ignored_count ? r->ignored[index] : NULL;
}

const json_t *vd_batch_reader_columns(const vd_batch_reader *r) { return r->column_map; }

void vd_batch_reader_close(vd_batch_reader *r) {
  if (!r) return;
  vd_csv_close(r->csv);
  for (size_t i = 0; r->headers && i < r->column_count; i++) free(r->headers[i]);
  free(r->headers);
  free(r->columns);
  free(r->ignored);
  json_decref(r->constants);
  json_decref(r->column_map);
  if (r->file) fclose(r->file);
  free(r->buf);
  free(r->path);
  free(r);
}
