/* `verdict rules check|test FILE...`: the product team's checks before a rule file ships. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vd_args.h"
#include "vd_buf.h"
#include "vd_ruleset.h"
#include "vd_schema.h"
#include "vd_yaml.h"

static const char usage_text[] =
    "usage: verdict rules check FILE...\n"
    "       verdict rules test FILE...\n\n"
    "check  loads each rule file (and the schema it names; a schema file may be checked on\n"
    "       its own), type-checks every `when` against the schema and runs the file's tests.\n"
    "       Every mistake is printed as file:line:col: message, with the source line and a\n"
    "       caret. Exit 0 and one summary line per clean file, 1 when any file has errors.\n"
    "test   runs each rule file's `tests`: one PASS/FAIL line per test (with what differed),\n"
    "       then `N passed, N failed`. Exit 1 when any test fails or a file does not load.\n";

static void usage(FILE *f) { fputs(usage_text, f); }

/* The file the errors being printed are in, read once with where each line starts: reading it
 * again and counting lines for every error made thousands of errors quadratic. */
typedef struct source {
  char path[VD_ERROR_WHERE_MAX];
  char *text;
  size_t *starts, count;
} source;

static void source_free(source *s) {
  free(s->text);
  free(s->starts);
  *s = (source){0};
}

/* Line `line` (1-based) of path, NULL when there is no such line. */
static const char *source_line(source *s, const char *path, int line) {
  if (strcmp(s->path, path) != 0) {
    source_free(s);
    snprintf(s->path, sizeof s->path, "%s", path);
    s->text = vd_read_file(path, 64 * 1024 * 1024, NULL, NULL);
    size_t lines = 1;
    for (const char *p = s->text; p && (p = strchr(p, '\n')); p++) lines++;
    s->starts = s->text ? malloc(lines * sizeof *s->starts) : NULL;
    if (s->starts) {
      s->starts[s->count++] = 0;
      for (const char *p = s->text; (p = strchr(p, '\n')); p++)
        s->starts[s->count++] = (size_t)(p + 1 - s->text);
    }
  }
  if (!s->text || !s->starts || line <= 0 || (size_t)line > s->count) return NULL;
  return s->text + s->starts[line - 1];
}

/* Prints line `line` of `path` and a caret under column `column` (1-based, in characters). */
static void print_source(FILE *f, source *src, const char *path, int line, int column) {
  const char *p = source_line(src, path, line);
  if (p && *p) {
    size_t len = strcspn(p, "\r\n");
    fprintf(f, "%.*s\n", (int)len, p);
    vd_buf caret = {0};
    int chars = 0;
    for (size_t i = 0; i < len && chars < column - 1; i++) {
      unsigned char c = (unsigned char)p[i];
      if ((c & 0xC0) == 0x80) continue; /* UTF-8 continuation: same character */
      vd_buf_puts(&caret, c == '\t' ? "\t" : " ");
      chars++;
    }
    for (; chars < column - 1; chars++) vd_buf_puts(&caret, " ");
    fprintf(f, "%s^\n", caret.data ? caret.data : "");
    vd_buf_free(&caret);
  }
}

static void print_diags(FILE *f, const vd_diags *diags) {
  source src = {0};
  for (size_t i = 0; i < diags->count; i++) {
    const vd_error *e = &diags->items[i];
    char line[VD_ERROR_MESSAGE_MAX + VD_ERROR_WHERE_MAX + 32];
    vd_error_format(e, line, sizeof line);
    fprintf(f, "%s\n", line);
    if (e->file[0]) print_source(f, &src, e->file, e->line, e->column);
  }
  source_free(&src);
}

/* A file whose top level has `fields:` and no `rules:` is a schema. */
static bool looks_like_schema(const char *path) {
  vd_yaml_doc *doc = vd_yaml_load_file(path, NULL);
  if (!doc) return false;
  json_t *root = vd_yaml_root(doc);
  bool schema =
      json_is_object(root) && json_object_get(root, "fields") && !json_object_get(root, "rules");
  vd_yaml_free(doc);
  return schema;
}

static bool check_file(const char *path, FILE *out, FILE *err) {
  vd_diags diags = {0};
  bool ok;
  if (looks_like_schema(path)) {
    vd_schema *schema = vd_schema_load(path, &diags);
    ok = schema != NULL;
    if (ok)
      fprintf(out, "%s: ok: schema %s, %zu fields, version %.12s\n", path, vd_schema_name(schema),
              vd_schema_field_count(schema), vd_schema_version(schema));
    vd_schema_free(schema);
  } else {
    vd_ruleset *rs = vd_ruleset_load(path, &diags);
    ok = rs != NULL;
    if (ok) {
      size_t n = vd_ruleset_rule_count(rs), before = 0;
      for (size_t i = 0; i < n; i++)
        before += vd_ruleset_rule_stage(rs, i) == VD_STAGE_BEFORE_MODEL;
      const vd_schema *schema = vd_ruleset_schema(rs);
      fprintf(out,
              "%s: ok: ruleset %s, %zu rules (%zu before_model, %zu after_model), %zu tests "
              "passed, schema %s (%zu fields), version %.12s\n",
              path, vd_ruleset_name(rs), n, before, n - before, vd_ruleset_test_count(rs),
              vd_schema_name(schema), vd_schema_field_count(schema), vd_ruleset_version(rs));
    }
    vd_ruleset_free(rs);
  }
  if (!ok) {
    print_diags(err, &diags);
    if (diags.count == 0) fprintf(err, "%s: does not load\n", path);
    fprintf(err, "%s: %zu error%s\n", path, diags.count, diags.count == 1 ? "" : "s");
  }
  vd_diags_free(&diags);
  return ok;
}

static void test_file(const char *path, FILE *out, FILE *err, size_t *passed, size_t *failed) {
  vd_diags diags = {0};
  vd_ruleset *rs = vd_ruleset_load_flags(path, VD_RULESET_SKIP_TESTS, &diags);
  if (!rs) {
    print_diags(err, &diags);
    fprintf(out, "FAIL %s: the file does not load (%zu error%s above)\n", path, diags.count,
            diags.count == 1 ? "" : "s");
    (*failed)++;
    vd_diags_free(&diags);
    return;
  }
  for (size_t i = 0; i < vd_ruleset_test_count(rs); i++) {
    vd_ruleset_test_result result;
    vd_ruleset_run_test(rs, i, &result);
    if (result.passed) {
      fprintf(out, "PASS %s: %s\n", path, result.name);
      (*passed)++;
    } else {
      fprintf(out, "FAIL %s: %s\n     %s\n", path, result.name, result.difference);
      (*failed)++;
    }
  }
  vd_ruleset_free(rs);
  vd_diags_free(&diags);
}

int vd_verb_rules(int argc, char **argv, FILE *out, FILE *err) {
  if (argc >= 2 && strcmp(argv[1], "--help") == 0) {
    usage(out);
    return 0;
  }
  if (argc < 2 || (strcmp(argv[1], "check") != 0 && strcmp(argv[1], "test") != 0)) {
    if (argc >= 2) fprintf(err, "verdict rules: unknown command '%s' (check or test)\n\n", argv[1]);
    usage(err);
    return 2;
  }
  bool check = strcmp(argv[1], "check") == 0;
  enum { MAX_FILES = 256 };
  const char *files[MAX_FILES];
  size_t file_count = 0;
  const vd_verb_help help = {check ? "rules check" : "rules test", usage_text, NULL};
  int parsed = vd_args_verb(&help, argc, argv, 2, NULL, 0, files, MAX_FILES, &file_count, out, err);
  if (parsed != VD_ARGS_GO_ON) return parsed;
  if (file_count == 0) {
    fprintf(err, "verdict rules %s: name at least one rule file\n\n", argv[1]);
    usage(err);
    return 2;
  }
  if (check) {
    bool ok = true;
    for (size_t i = 0; i < file_count; i++) ok = check_file(files[i], out, err) && ok;
    return ok ? 0 : 1;
  }
  size_t passed = 0, failed = 0;
  for (size_t i = 0; i < file_count; i++) test_file(files[i], out, err, &passed, &failed);
  fprintf(out, "%zu passed, %zu failed\n", passed, failed);
  return failed ? 1 : 0;
}
