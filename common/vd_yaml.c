#include "vd_yaml.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "vd_buf.h"

/* Where one value (and, in a mapping, its key) stood in the source. */
typedef struct position {
  const json_t *container; /* NULL for the root */
  char *key;               /* owned; NULL for array elements and the root */
  size_t index;
  int line, column;          /* of the value, 1-based */
  int key_line, key_column;  /* of the key, 1-based */
  yaml_scalar_style_t style; /* for scalars; 0 for collections */
} position;

struct vd_yaml_doc {
  char *name;
  char *text;
  size_t text_len;
  json_t *root;
  position *positions;
  size_t count, capacity;
  const position **by_place; /* the positions ordered by (container, key or index): lookups
                              * in log time — a scan per error made 3,000 errors quadratic */
  size_t *line_starts;       /* byte offset of each line's start */
  size_t line_count;
};

/* One open collection while parsing. */
typedef struct frame {
  json_t *node;
  char *pending_key; /* in a mapping: the key waiting for its value */
  int key_line, key_column;
} frame;

enum { MAX_DEPTH = 256 };

typedef struct parse_state {
  vd_yaml_doc *doc;
  frame stack[MAX_DEPTH];
  int depth;
  int documents;
} parse_state;

static int line_of(const yaml_mark_t *m) { return (int)m->line + 1; }
static int column_of(const yaml_mark_t *m) { return (int)m->column + 1; }

static bool fail_at(vd_yaml_doc *doc, const yaml_mark_t *mark, vd_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool fail_at(vd_yaml_doc *doc, const yaml_mark_t *mark, vd_error *err, const char *fmt,
                    ...) {
  char message[VD_ERROR_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  return vd_error_at(err, doc->name, line_of(mark), column_of(mark), "%s", message);
}

static bool add_position(vd_yaml_doc *doc, position p) {
  if (doc->count == doc->capacity) {
    size_t capacity = doc->capacity ? doc->capacity * 2 : 64;
    position *grown = realloc(doc->positions, capacity * sizeof *grown);
    if (!grown) return false;
    doc->positions = grown;
    doc->capacity = capacity;
  }
  doc->positions[doc->count++] = p;
  return true;
}

static bool is_digits(const char *s, size_t n) {
  if (n == 0) return false;
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

/* [-+]?digits — the only integer spelling accepted. */
static bool looks_integer(const char *s, size_t n) {
  if (n && (s[0] == '-' || s[0] == '+')) s++, n--;
  return is_digits(s, n);
}

/* [-+]?(digits.digits*|.digits)([eE][-+]?digits)? or digits[eE]..., with a point or exponent. */
static bool looks_real(const char *s, size_t n) {
  size_t i = 0;
  if (i < n && (s[i] == '-' || s[i] == '+')) i++;
  size_t int_start = i;
  while (i < n && s[i] >= '0' && s[i] <= '9') i++;
  size_t int_digits = i - int_start;
  bool point = false, exponent = false;
  size_t frac_digits = 0;
  if (i < n && s[i] == '.') {
    point = true;
    i++;
    size_t frac_start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    frac_digits = i - frac_start;
  }
  if (int_digits + frac_digits == 0) return false;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    exponent = true;
    i++;
    if (i < n && (s[i] == '-' || s[i] == '+')) i++;
    size_t exp_start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    if (i == exp_start) return false;
  }
  return i == n && (point || exponent);
}

static bool has_leading_zero(const char *s, size_t n) {
  if (n && (s[0] == '-' || s[0] == '+')) s++, n--;
  return n > 1 && s[0] == '0' && s[1] >= '0' && s[1] <= '9';
}

/* Converts one scalar to json by the rules in the header. */
static json_t *scalar_value(vd_yaml_doc *doc, const yaml_event_t *ev, vd_error *err) {
  const char *s = (const char *)ev->data.scalar.value;
  size_t n = ev->data.scalar.length;
  if (memchr(s, '\0', n)) {
    fail_at(doc, &ev->start_mark, err, "a NUL character is not allowed in a value");
    return NULL;
  }
  if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return json_stringn(s, n);
  if (n == 0 || strcmp(s, "null") == 0 || strcmp(s, "~") == 0) return json_null();
  if (strcmp(s, "true") == 0) return json_true();
  if (strcmp(s, "false") == 0) return json_false();
  if (looks_integer(s, n)) {
    if (has_leading_zero(s, n)) {
      fail_at(doc, &ev->start_mark, err,
              "'%s' has a leading zero: quote it if it is a string, or drop the zero", s);
      return NULL;
    }
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE || end != s + n) {
      fail_at(doc, &ev->start_mark, err, "integer '%s' is out of the 64-bit range", s);
      return NULL;
    }
    return json_integer((json_int_t)v);
  }
  if (looks_real(s, n)) {
    if (has_leading_zero(s, n)) {
      fail_at(doc, &ev->start_mark, err,
              "'%s' has a leading zero: quote it if it is a string, or drop the zero", s);
      return NULL;
    }
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (errno == ERANGE || end != s + n) {
      fail_at(doc, &ev->start_mark, err, "number '%s' is out of range", s);
      return NULL;
    }
    return json_real(v);
  }
  return json_stringn(s, n);
}

/* Attaches value to the open collection on top of the stack (or makes it the root) and records
 * its position. Takes ownership of value. */
static bool attach(parse_state *st, json_t *value, const yaml_event_t *ev, vd_error *err) {
  vd_yaml_doc *doc = st->doc;
  position p = {.line = line_of(&ev->start_mark),
                .column = column_of(&ev->start_mark),
                .style = ev->type == YAML_SCALAR_EVENT ? ev->data.scalar.style : 0};
  if (st->depth == 0) {
    doc->root = value;
  } else {
    frame *top = &st->stack[st->depth - 1];
    p.container = top->node;
    if (json_is_object(top->node)) {
      p.key = top->pending_key;
      p.key_line = top->key_line;
      p.key_column = top->key_column;
      top->pending_key = NULL;
      if (json_object_set_new(top->node, p.key, value) != 0) {
        free(p.key);
        return fail_at(doc, &ev->start_mark, err, "out of memory");
      }
    } else {
      p.index = json_array_size(top->node);
      if (json_array_append_new(top->node, value) != 0)
        return fail_at(doc, &ev->start_mark, err, "out of memory");
    }
  }
  if (!add_position(doc, p)) {
    free(p.key);
    return fail_at(doc, &ev->start_mark, err, "out of memory");
  }
  return true;
}

static bool refuse_anchor_and_tag(vd_yaml_doc *doc, const yaml_event_t *ev,
                                  const yaml_char_t *anchor, const yaml_char_t *tag, int implicit,
                                  vd_error *err) {
  if (anchor)
    return fail_at(doc, &ev->start_mark, err,
                   "anchors (&%s) are not allowed: write the value out in full",
                   (const char *)anchor);
  if (tag && !implicit)
    return fail_at(doc, &ev->start_mark, err, "tags (%s) are not allowed", (const char *)tag);
  return true;
}

/* In a mapping with no pending key, a scalar is a key. */
static bool take_key(parse_state *st, const yaml_event_t *ev, vd_error *err) {
  frame *top = &st->stack[st->depth - 1];
  const char *key = (const char *)ev->data.scalar.value;
  if (strlen(key) != ev->data.scalar.length)
    return fail_at(st->doc, &ev->start_mark, err, "a NUL character is not allowed in a key");
  if (json_object_get(top->node, key)) {
    int line = 0, column = 0;
    vd_yaml_where_key(st->doc, top->node, key, &line, &column);
    return fail_at(st->doc, &ev->start_mark, err, "duplicate key '%s' (first defined at line %d)",
                   key, line);
  }
  top->pending_key = strdup(key);
  if (!top->pending_key) return fail_at(st->doc, &ev->start_mark, err, "out of memory");
  top->key_line = line_of(&ev->start_mark);
  top->key_column = column_of(&ev->start_mark);
  return true;
}

static bool expecting_key(const parse_state *st) {
  if (st->depth == 0) return false;
  const frame *top = &st->stack[st->depth - 1];
  return json_is_object(top->node) && top->pending_key == NULL;
}

static bool open_collection(parse_state *st, json_t *node, const yaml_event_t *ev, vd_error *err) {
  if (!node) return fail_at(st->doc, &ev->start_mark, err, "out of memory");
  if (expecting_key(st)) {
    json_decref(node);
    return fail_at(st->doc, &ev->start_mark, err, "a key must be a plain value, not a collection");
  }
  if (st->depth == MAX_DEPTH) {
    json_decref(node);
    return fail_at(st->doc, &ev->start_mark, err, "nesting deeper than %d levels", MAX_DEPTH);
  }
  json_incref(node); /* one reference for the tree, one for the stack */
  if (!attach(st, node, ev, err)) {
    json_decref(node);
    return false;
  }
  st->stack[st->depth++] = (frame){.node = node};
  return true;
}

static bool handle_event(parse_state *st, const yaml_event_t *ev, bool *done, vd_error *err) {
  vd_yaml_doc *doc = st->doc;
  switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_NO_EVENT:
    case YAML_DOCUMENT_END_EVENT:
      return true;
    case YAML_STREAM_END_EVENT:
      *done = true;
      return true;
    case YAML_DOCUMENT_START_EVENT:
      if (++st->documents > 1)
        return fail_at(doc, &ev->start_mark, err, "only one YAML document per file is allowed");
      return true;
    case YAML_ALIAS_EVENT:
      return fail_at(doc, &ev->start_mark, err,
                     "aliases (*%s) are not allowed: write the value out in full",
                     (const char *)ev->data.alias.anchor);
    case YAML_SCALAR_EVENT: {
      if (!refuse_anchor_and_tag(doc, ev, ev->data.scalar.anchor, ev->data.scalar.tag,
                                 ev->data.scalar.plain_implicit || ev->data.scalar.quoted_implicit,
                                 err))
        return false;
      if (expecting_key(st)) return take_key(st, ev, err);
      json_t *value = scalar_value(doc, ev, err);
      return value && attach(st, value, ev, err);
    }
    case YAML_MAPPING_START_EVENT:
      if (!refuse_anchor_and_tag(doc, ev, ev->data.mapping_start.anchor, ev->data.mapping_start.tag,
                                 ev->data.mapping_start.implicit, err))
        return false;
      return open_collection(st, json_object(), ev, err);
    case YAML_SEQUENCE_START_EVENT:
      if (!refuse_anchor_and_tag(doc, ev, ev->data.sequence_start.anchor,
                                 ev->data.sequence_start.tag, ev->data.sequence_start.implicit,
                                 err))
        return false;
      return open_collection(st, json_array(), ev, err);
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT: {
      frame *top = &st->stack[--st->depth];
      free(top->pending_key);
      json_decref(top->node);
      return true;
    }
  }
  return true;
}

static bool index_lines(vd_yaml_doc *doc) {
  size_t lines = 1;
  for (size_t i = 0; i < doc->text_len; i++)
    if (doc->text[i] == '\n') lines++;
  doc->line_starts = malloc(lines * sizeof *doc->line_starts);
  if (!doc->line_starts) return false;
  doc->line_starts[0] = 0;
  size_t k = 1;
  for (size_t i = 0; i < doc->text_len; i++)
    if (doc->text[i] == '\n') doc->line_starts[k++] = i + 1;
  doc->line_count = lines;
  return true;
}

/* The order of places: by container, then array elements (by index) before keys (by text). */
static int place_order(const position *p, const json_t *container, const char *key, size_t index) {
  uintptr_t a = (uintptr_t)p->container, b = (uintptr_t)container;
  if (a != b) return a < b ? -1 : 1;
  if (!p->key || !key) {
    if (p->key || key) return p->key ? 1 : -1;
    return p->index < index ? -1 : p->index > index;
  }
  return strcmp(p->key, key);
}

static int by_place(const void *x, const void *y) {
  const position *a = *(const position *const *)x, *b = *(const position *const *)y;
  int order = place_order(a, b->container, b->key, b->index);
  if (order) return order;
  return a < b ? -1 : a > b; /* the positions array is in text order: the first one first */
}

static bool index_places(vd_yaml_doc *doc) {
  doc->by_place = malloc((doc->count ? doc->count : 1) * sizeof(const position *));
  if (!doc->by_place) return false;
  for (size_t i = 0; i < doc->count; i++) doc->by_place[i] = &doc->positions[i];
  qsort(doc->by_place, doc->count, sizeof(const position *), by_place);
  return true;
}

/* Whether a line (1-based) holds nothing but white space, or is past the end of the text. */
static bool blank_line(const vd_yaml_doc *doc, int line) {
  size_t len = 0;
  const char *text = vd_yaml_source_line(doc, line, &len);
  if (!text) return true;
  for (size_t i = 0; i < len; i++)
    if (text[i] != ' ' && text[i] != '\t') return false;
  return true;
}

/* A syntax error, placed on what the user wrote. libyaml's problem_mark is where it noticed the
 * mistake, often lines later: an unclosed quote, bracket or brace, or a key without its ':', is
 * noticed at the next key or at the end of the text. Then its context_mark, the opening of the
 * construct it names ("while scanning a quoted scalar"), is the mistake; and a problem noticed at
 * the start of a blank line, or past the end, belongs to the last line written. */
/* libyaml's words for a mistake, and what a person editing the file by hand usually did. */
static const char *plain_hint(const char *problem, const char *context) {
  static const struct {
    const char *problem, *context, *hint;
  } hints[] = {
      {"mapping values are not allowed", NULL,
       " (a ':' where none can be: is this line indented deeper than the one above, or does a "
       "value contain ': '? then quote it)"},
      {"did not find expected ',' or '}'", NULL,
       " (a quote or a '{' never closed, or a ',' missing between two entries?)"},
      {"did not find expected ',' or ']'", NULL,
       " (a quote or a '[' never closed, or a ',' missing between two items?)"},
      {"found unexpected end of stream", "quoted scalar", " (a quote never closed?)"},
      {"found character that cannot start any token", NULL,
       " (a tab? YAML indents with spaces only; or quote a value starting with '@' or '`')"},
      {"did not find expected key", NULL,
       " (this line's indentation does not match the entries above it)"},
  };
  for (size_t i = 0; i < sizeof hints / sizeof hints[0]; i++)
    if (strstr(problem, hints[i].problem) &&
        (!hints[i].context || (context && strstr(context, hints[i].context))))
      return hints[i].hint;
  return "";
}

static void syntax_error(vd_yaml_doc *doc, const yaml_parser_t *p, vd_error *err) {
  const char *problem = p->problem ? p->problem : "invalid YAML";
  const char *context = p->context;
  const char *hint = plain_hint(problem, context);
  int line = line_of(&p->problem_mark), column = column_of(&p->problem_mark);
  bool unclosed = context && p->context_mark.line < p->problem_mark.line &&
                  (strstr(context, "while scanning") || strstr(context, "flow"));
  if (unclosed) {
    vd_error_at(err, doc->name, line_of(&p->context_mark), column_of(&p->context_mark),
                "%s %s that starts here (noticed at line %d, column %d)%s", problem, context, line,
                column, hint);
    return;
  }
  if (column == 1 && line > 1 && blank_line(doc, line)) {
    while (line > 1 && blank_line(doc, line)) line--;
    size_t len = 0;
    vd_yaml_source_line(doc, line, &len);
    column = (int)len + 1; /* just after the last thing written */
  }
  vd_error_at(err, doc->name, line, column, "%s%s%s%s", problem, context ? " " : "",
              context ? context : "", hint);
}

vd_yaml_doc *vd_yaml_load_string(const char *text, size_t len, const char *name, vd_error *err) {
  vd_yaml_doc *doc = calloc(1, sizeof *doc);
  if (!doc) {
    vd_error_set(err, "out of memory");
    return NULL;
  }
  doc->name = strdup(name ? name : "<string>");
  doc->text = malloc(len + 1);
  if (!doc->name || !doc->text) {
    vd_yaml_free(doc);
    vd_error_set(err, "out of memory");
    return NULL;
  }
  memcpy(doc->text, text, len);
  doc->text[len] = '\0';
  doc->text_len = len;
  if (!index_lines(doc)) {
    vd_yaml_free(doc);
    vd_error_set(err, "out of memory");
    return NULL;
  }

  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser)) {
    vd_yaml_free(doc);
    vd_error_set(err, "cannot initialise the YAML parser");
    return NULL;
  }
  yaml_parser_set_input_string(&parser, (const unsigned char *)doc->text, len);
  parse_state st = {.doc = doc};
  bool ok = true, done = false;
  while (ok && !done) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&parser, &ev)) {
      syntax_error(doc, &parser, err);
      ok = false;
      break;
    }
    ok = handle_event(&st, &ev, &done, err);
    yaml_event_delete(&ev);
  }
  yaml_parser_delete(&parser);
  while (st.depth > 0) {
    frame *top = &st.stack[--st.depth];
    free(top->pending_key);
    json_decref(top->node);
  }
  if (!ok) {
    vd_yaml_free(doc);
    return NULL;
  }
  if (!doc->root) doc->root = json_null();
  if (!index_places(doc)) {
    vd_yaml_free(doc);
    vd_error_set(err, "out of memory");
    return NULL;
  }
  return doc;
}

vd_yaml_doc *vd_yaml_load_file(const char *path, vd_error *err) {
  size_t size = 0;
  char *text = vd_read_file(path, VD_YAML_MAX_BYTES, &size, err);
  if (!text) return NULL;
  vd_yaml_doc *doc = vd_yaml_load_string(text, size, path, err);
  free(text);
  return doc;
}

void vd_yaml_free(vd_yaml_doc *doc) {
  if (!doc) return;
  for (size_t i = 0; i < doc->count; i++) free(doc->positions[i].key);
  free(doc->positions);
  free(doc->by_place);
  json_decref(doc->root);
  free(doc->line_starts);
  free(doc->text);
  free(doc->name);
  free(doc);
}

json_t *vd_yaml_root(const vd_yaml_doc *doc) { return doc->root; }
const char *vd_yaml_name(const vd_yaml_doc *doc) { return doc->name; }

static const position *find(const vd_yaml_doc *doc, const json_t *container, const char *key,
                            size_t index) {
  if (!doc->by_place) { /* still parsing (a duplicate key's first place): not indexed yet */
    for (size_t i = 0; i < doc->count; i++) {
      const position *p = &doc->positions[i];
      if (p->container == container && (!container || place_order(p, container, key, index) == 0))
        return p;
    }
    return NULL;
  }
  size_t lo = 0, hi = doc->count; /* the first place not before the one asked for */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (place_order(doc->by_place[mid], container, key, index) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == doc->count) return NULL;
  const position *p = doc->by_place[lo];
  if (p->container != container) return NULL;
  if (!container) return p; /* the root */
  return place_order(p, container, key, index) == 0 ? p : NULL;
}

bool vd_yaml_where(const vd_yaml_doc *doc, const json_t *container, const char *key, size_t index,
                   int *line, int *column) {
  const position *p = find(doc, container, key, index);
  if (!p) return false;
  *line = p->line;
  *column = p->column;
  return true;
}

bool vd_yaml_where_key(const vd_yaml_doc *doc, const json_t *container, const char *key, int *line,
                       int *column) {
  const position *p = key ? find(doc, container, key, 0) : NULL;
  if (!p) return false;
  *line = p->key_line;
  *column = p->key_column;
  return true;
}

const char *vd_yaml_source_line(const vd_yaml_doc *doc, int line, size_t *length) {
  if (line < 1 || (size_t)line > doc->line_count) return NULL;
  size_t start = doc->line_starts[line - 1];
  size_t end = (size_t)line < doc->line_count ? doc->line_starts[line] - 1 : doc->text_len;
  if (end > start && doc->text[end - 1] == '\r') end--;
  *length = end - start;
  return doc->text + start;
}

/* Walks the source lines of a scalar, counting each content line's characters plus one for the
 * line break (which YAML keeps or folds into a space: one character either way). Block scalars
 * start on the line after their indicator; flow scalars start at their own column. */
bool vd_yaml_where_in_scalar(const vd_yaml_doc *doc, const json_t *container, const char *key,
                             size_t index, size_t offset, int *line, int *column) {
  const position *p = find(doc, container, key, index);
  if (!p || !p->style) return false;
  bool block = p->style == YAML_LITERAL_SCALAR_STYLE || p->style == YAML_FOLDED_SCALAR_STYLE;
  bool quoted =
      p->style == YAML_SINGLE_QUOTED_SCALAR_STYLE || p->style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
  int current = block ? p->line + 1 : p->line;
  int start_column = block ? 0 : p->column + (quoted ? 1 : 0);
  int block_indent = -1;
  size_t remaining = offset;
  for (; current <= (int)doc->line_count; current++) {
    size_t len = 0;
    const char *text = vd_yaml_source_line(doc, current, &len);
    size_t first = 0;
    if (current == p->line && !block) {
      first = (size_t)(start_column - 1);
    } else {
      size_t indent = 0;
      while (indent < len && (text[indent] == ' ' || text[indent] == '\t')) indent++;
      if (block) {
        if (indent == len) { /* blank line inside a block: just a line break */
          if (remaining == 0) break;
          remaining--;
          continue;
        }
        if (block_indent < 0) block_indent = (int)indent;
        first = (size_t)block_indent < len ? (size_t)block_indent : len;
      } else {
        first = indent;
      }
    }
    size_t content = len > first ? len - first : 0;
    if (remaining <= content) {
      *line = current;
      *column = (int)(first + remaining) + 1;
      return true;
    }
    remaining -= content + 1;
  }
  *line = p->line;
  *column = p->column;
  return true;
}

bool vd_yaml_error(const vd_yaml_doc *doc, const json_t *container, const char *key, size_t index,
                   vd_error *err, const char *fmt, ...) {
  char message[VD_ERROR_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  int line = 0, column = 0;
  if (vd_yaml_where(doc, container, key, index, &line, &column))
    return vd_error_at(err, doc->name, line, column, "%s", message);
  return vd_error_at(err, doc->name, 0, 0, "%s", message);
}
