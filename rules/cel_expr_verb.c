/* cel_expr_verb.c: `verdict expr EXPR [--vars JSON]` — evaluates one CEL expression with typed
 * variables (the conformance format) and prints the typed result, so any conformance case or
 * rule condition can be tried from the shell. */
#include <stdlib.h>
#include <string.h>

#include "cel_internal.h"
#include "vd_args.h"

static const vd_verb_help help = {
    "expr",
    "usage: verdict expr EXPR [--vars JSON]\n\n"
    "Evaluates one expression in verdict's CEL subset and prints its typed result as JSON,\n"
    "e.g. {\"type\":\"int\",\"value\":3}, or {\"error\":\"...\"} when evaluation fails (exit 0\n"
    "in both cases). A syntax or type error, or bad arguments, exit 2 with the message.\n\n"
    "  --vars JSON  an object of typed values: {\"x\": {\"type\": \"int\", \"value\": 3}};\n"
    "               names may be qualified (\"subject.recency\"). Variables are dynamically\n"
    "               typed (dyn).",
    NULL};

/* Prints "expr:LINE:COL: message", the source line and a caret under the mistake. */
static void print_compile_error(FILE *err, const char *src, size_t offset, const vd_error *e) {
  fprintf(err, "verdict expr: <expr>:%d:%d: %s\n", e->line, e->column, e->message);
  size_t start = offset, end = offset, len = strlen(src);
  if (start > len) start = end = len;
  while (start > 0 && src[start - 1] != '\n') start--;
  while (end < len && src[end] != '\n') end++;
  fprintf(err, "  %.*s\n  ", (int)(end - start), src + start);
  for (int i = 1; i < e->column; i++) fputc(' ', err);
  fputs("^\n", err);
}

int vd_verb_expr(int argc, char **argv, FILE *out, FILE *err) {
  vd_option options[] = {{"vars", true, NULL, NULL}}; /* described in the help text */
  const char *positionals[1];
  size_t npos = 0;
  int parsed = vd_args_verb(&help, argc, argv, 1, options, 1, positionals, 1, &npos, out, err);
  if (parsed != VD_ARGS_GO_ON) return parsed;
  if (npos != 1) return vd_args_usage_error("expr", err, "expected one expression");
  vd_error e = {0};
  const char *src = positionals[0], *vars_text = vd_args_get(options, 1, "vars");
  json_t *vars = NULL;
  if (vars_text) {
    json_error_t je;
    vars = json_loads(vars_text, JSON_DECODE_ANY, &je);
    if (!vars || !json_is_object(vars)) {
      fprintf(err, "verdict expr: --vars: %s\n",
              vars ? "must be a JSON object of typed values" : je.text);
      json_decref(vars);
      return 2;
    }
  }
  int rc = 2;
  vd_cel_env *env = vd_cel_env_new();
  vd_cel_arena arena;
  unsigned char scratch[8192];
  vd_cel_arena_init(&arena, scratch, sizeof scratch);
  size_t nvars = vars ? json_object_size(vars) : 0;
  vd_cel_value *slots = calloc(nvars ? nvars : 1, sizeof *slots);
  vd_cel_program *prog = NULL;
  if (!env || !slots) {
    fprintf(err, "verdict expr: out of memory\n");
    goto done;
  }
  const char *name;
  json_t *value;
  json_object_foreach(vars, name, value) {
    size_t slot;
    if (!vd_cel_env_declare(env, name, vd_cel_type_dyn(), &slot, &e) ||
        !vd_cel_from_typed_json(value, &arena, &slots[slot], &e)) {
      char msg[VD_ERROR_MESSAGE_MAX + VD_ERROR_WHERE_MAX];
      vd_error_format(&e, msg, sizeof msg);
      fprintf(err, "verdict expr: --vars: %s: %s\n", name, msg);
      goto done;
    }
  }
  size_t offset = 0;
  prog = vd_cel_compile(env, src, strlen(src), &offset, &e);
  if (!prog) {
    print_compile_error(err, src, offset, &e);
    goto done;
  }
  vd_cel_value result;
  json_t *j = vd_cel_eval(prog, slots, nvars, &arena, &result, NULL, NULL)
                  ? vd_cel_to_typed_json(&result)
                  : vd_cel_error_json(&result);
  char *text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) : NULL;
  json_decref(j);
  if (!text) {
    fprintf(err, "verdict expr: cannot print the result\n");
    rc = 1;
    goto done;
  }
  fprintf(out, "%s\n", text);
  free(text);
  rc = 0;
done:
  vd_cel_program_free(prog);
  vd_cel_arena_free(&arena);
  free(slots);
  vd_cel_env_free(env);
  json_decref(vars);
  return rc;
}
