#include "vd_ruleset.h"

#include <libgen.h>
#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vd_buf.h"
#include "vd_cel.h"
#include "vd_hash.h"
#include "vd_json_write.h"
#include "vd_suggest.h"
#include "vd_yaml.h"
#include "vd_yaml_diag.h"

/* ---- the loaded form ----------------------------------------------------------------------- */

typedef struct rule {
  char *id;
  char *description;
  char *when; /* as written, trimmed */
  vd_stage stage;
  long long order; /* the rule-level `priority` (evaluation order) */
  size_t file_index;
  vd_action action;
  json_t *argument; /* the action's argument (string, or number for adjust) */
  const char *text; /* the argument as a string (deny/allow/route/priority/escalate) */
  double adjust;
  vd_cel_program *program;
  bool reads_candidate;
  bool reads_score;
} rule;

typedef struct test_case {
  char *name;
  json_t *input;  /* borrowed from root */
  json_t *expect; /* borrowed from root */
} test_case;

/* score.* variables, in slot order after the schema's fields. */
typedef enum score_var {
  SCORE_P_TREATMENT,
  SCORE_P_CONTROL,
  SCORE_UPLIFT,
  SCORE_MARGIN,
  SCORE_VALUE,
  SCORE_CONFIDENCE,
  SCORE_INTENT,
  SCORE_COUNT
} score_var;
static const char *const score_names[SCORE_COUNT] = {
    "p_treatment", "p_control", "uplift", "margin", "value", "confidence", "intent"};

typedef struct bound_field {
  size_t slot;
  const vd_schema_field *field;
  const char *name; /* inside its section */
  vd_field_section section;
  bool nested; /* a dotted name ("address.country") */
} bound_field;

struct vd_ruleset {
  atomic_int references;
  char *name;
  char *description;
  double default_score;
  vd_schema *schema;
  vd_cel_env *env;
  size_t field_slots; /* schema fields occupy slots [0, field_slots) */
  size_t slot_count;  /* plus SCORE_COUNT score slots */
  rule *rules;        /* in evaluation order */
  size_t count;
  size_t stage_begin[2], stage_end[2];
  bool stage_reads_candidate[2];
  size_t max_refs, total_refs;
  /* The fields some rule reads: [0] subject/context, [1] candidate. */
  bound_field *bound[2];
  size_t bound_count[2];
  json_t *root; /* the rule file's document (owned copy), for tests */
  test_case *tests;
  size_t test_count;
  char *canonical;
  char version[VD_SHA256_HEX_SIZE];
};

static const char *const action_names[] = {"deny",  "allow",    "adjust",
                                           "route", "priority", "escalate"};
enum { ACTION_COUNT = 6 };
static const char *const stage_names[] = {"before_model", "after_model"};

const char *vd_stage_name(vd_stage stage) { return stage_names[stage]; }
const char *vd_action_name(vd_action action) { return action_names[action]; }

/* Load-time copies; running out of memory while loading a rule file is not recoverable. */
static char *dup_string(const char *s) {
  size_t n = strlen(s) + 1;
  char *copy = malloc(n);
  if (!copy) {
    fputs("verdict: out of memory\n", stderr);
    abort();
  }
  memcpy(copy, s, n);
  return copy;
}

/* ---- loading ------------------------------------------------------------------------------- */

typedef struct loader {
  const vd_yaml_doc *doc;
  vd_diags *diags;
  size_t errors;
  vd_ruleset *rs;
} loader;

#define LOAD_ERROR(L, container, key, index, ...) \
  ((L)->errors++, vd_yaml_diag((L)->doc, container, key, index, (L)->diags, __VA_ARGS__))
#define LOAD_ERROR_KEY(L, container, key, ...) \
  ((L)->errors++, vd_yaml_diag_key((L)->doc, container, key, (L)->diags, __VA_ARGS__))

static const char *const top_keys[] = {"ruleset",       "description", "schema",
                                       "default_score", "rules",       "tests"};
static const char *const rule_keys[] = {"id", "description", "stage", "priority", "when", "then"};
static const char *const test_keys[] = {"name", "input", "expect"};
static const char *const input_keys[] = {"subject", "candidate", "context", "score"};
static const char *const expect_keys[] = {"eligible", "decision", "decided_by", "fired",
                                          "adjust",   "score",    "route",      "priority",
                                          "escalate", "errors"};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const vd_cel_type *cel_type_of(vd_cel_env *env, vd_field_type t, vd_field_type element) {
  switch (t) {
    case VD_FIELD_BOOL:
      return vd_cel_type_of_kind(VD_CEL_BOOL);
    case VD_FIELD_INT:
      return vd_cel_type_of_kind(VD_CEL_INT);
    case VD_FIELD_DOUBLE:
      return vd_cel_type_of_kind(VD_CEL_DOUBLE);
    case VD_FIELD_STRING:
    case VD_FIELD_ENUM:
      return vd_cel_type_of_kind(VD_CEL_STRING);
    case VD_FIELD_TIMESTAMP:
      return vd_cel_type_of_kind(VD_CEL_TIMESTAMP);
    case VD_FIELD_LIST:
      return vd_cel_type_list(env, cel_type_of(env, element, element));
  }
  return vd_cel_type_dyn();
}

static bool declare_variables(vd_ruleset *rs, vd_error *err) {
  rs->env = vd_cel_env_new();
  if (!rs->env) return vd_error_set(err, "out of memory");
  size_t n = vd_schema_field_count(rs->schema);
  for (size_t i = 0; i < n; i++) {
    const vd_schema_field *f = vd_schema_field_at(rs->schema, i);
    size_t slot;
    if (!vd_cel_env_declare(
            rs->env, vd_schema_field_path(f),
            cel_type_of(rs->env, vd_schema_field_type(f), vd_schema_field_element_type(f)), &slot,
            err))
      return false;
    if (slot != i) return vd_error_set(err, "internal error: slot %zu for field %zu", slot, i);
  }
  rs->field_slots = n;
  for (int s = 0; s < SCORE_COUNT; s++) {
    char name[32];
    snprintf(name, sizeof name, "score.%s", score_names[s]);
    size_t slot;
    const vd_cel_type *type =
        vd_cel_type_of_kind(s == SCORE_INTENT ? VD_CEL_STRING : VD_CEL_DOUBLE);
    if (!vd_cel_env_declare(rs->env, name, type, &slot, err)) return false;
  }
  rs->slot_count = n + SCORE_COUNT;
  return true;
}

static bool is_rule_id(const char *s) {
  if (!*s) return false;
  for (const char *p = s; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          *p == '-' || *p == '_' || *p == '.'))
      return false;
  return true;
}

/* Trims surrounding white space (block scalars end in a newline); *lead gets the bytes skipped. */
static char *trimmed_copy(const char *s, size_t *lead) {
  size_t start = 0, end = strlen(s);
  while (start < end && strchr(" \t\r\n", s[start])) start++;
  while (end > start && strchr(" \t\r\n", s[end - 1])) end--;
  char *out = malloc(end - start + 1);
  if (!out) return NULL;
  memcpy(out, s + start, end - start);
  out[end - start] = '\0';
  if (lead) *lead = start;
  return out;
}

static bool result_type_is_bool(const vd_cel_program *program, char *name, size_t size) {
  const vd_cel_type *t = vd_cel_program_type(program);
  if (t == vd_cel_type_of_kind(VD_CEL_BOOL) || t == vd_cel_type_dyn()) return true;
  vd_cel_type_format(t, name, size);
  return strcmp(name, "bool") == 0 || strcmp(name, "dyn") == 0;
}

/* Rewrites the checker's "undeclared reference to 'subject'" into the field the rule spelt and
 * the schema field it most likely meant. */
static void explain_unknown_field(const vd_ruleset *rs, const char *source, size_t offset,
                                  vd_error *e) {
  size_t end = offset;
  while (source[end] &&
         (source[end] == '.' || source[end] == '_' || (source[end] >= 'a' && source[end] <= 'z') ||
          (source[end] >= 'A' && source[end] <= 'Z') || (source[end] >= '0' && source[end] <= '9')))
    end++;
  while (end > offset && source[end - 1] == '.') end--;
  if (end == offset) return;
  char spelt[VD_ERROR_WHERE_MAX];
  snprintf(spelt, sizeof spelt, "%.*s", (int)(end - offset), source + offset);
  size_t n = vd_cel_env_slot_count(rs->env);
  const char **names = calloc(n ? n : 1, sizeof *names);
  if (!names) return;
  for (size_t i = 0; i < n; i++) names[i] = vd_cel_env_slot_name(rs->env, i);
  const char *typo = vd_suggest(spelt, (const char *const *)names, n);
  if (typo)
    vd_error_set(e, "unknown field %s (did you mean %s?)", spelt, typo);
  else
    vd_error_set(e,
                 "unknown field %s (schema %s has no such field; rules read subject.*, "
                 "candidate.*, context.* and, after the model, score.*)",
                 spelt, vd_schema_name(rs->schema));
  free(names);
}

/* ---- enum literals: `subject.zip_code == "Suburban"` type-checks (both are strings) but can never
 * match; a literal compared with an enum field must be one of its values. Recognised forms:
 * FIELD ==/!= 'lit', 'lit' ==/!= FIELD, FIELD in ['a', 'b']. */

static bool is_name_char(char c) {
  return c == '_' || c == '.' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9');
}

static size_t skip_spaces(const char *s, size_t i) {
  while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') i++;
  return i;
}

/* A quoted literal without escapes at s[i]; returns the index after it, or 0. */
static size_t literal_at(const char *s, size_t i, size_t *start, size_t *len) {
  char quote = s[i];
  if (quote != '"' && quote != '\'') return 0;
  size_t j = i + 1;
  while (s[j] && s[j] != quote && s[j] != '\\' && s[j] != '\n') j++;
  if (s[j] != quote) return 0;
  *start = i + 1;
  *len = j - i - 1;
  return j + 1;
}

static void check_enum_literal(loader *L, json_t *rule_obj, const rule *r, size_t lead,
                               const vd_schema_field *f, size_t start, size_t len) {
  size_t n = vd_schema_field_enum_count(f);
  const char *values[256];
  for (size_t k = 0; k < n; k++) {
    const char *value = vd_schema_field_enum_value(f, k);
    if (strlen(value) == len && memcmp(value, r->when + start, len) == 0) return;
    if (k < 256) values[k] = value;
  }
  char literal[128];
  snprintf(literal, sizeof literal, "%.*s", (int)len, r->when + start);
  const char *typo = vd_suggest(literal, values, n < 256 ? n : 256);
  vd_buf list = {0};
  for (size_t k = 0; k < n; k++) vd_buf_printf(&list, "%s%s", k ? ", " : "", values[k]);
  int line = 0, column = 0;
  vd_error e;
  bool found =
      vd_yaml_where_in_scalar(L->doc, rule_obj, "when", 0, lead + start - 1, &line, &column);
  vd_error_at(&e, vd_yaml_name(L->doc), found ? line : 0, found ? column : 0,
              "rule %s: \"%s\" is not one of the values of %s, so it can never be equal%s%s%s "
              "(the values are %s)",
              r->id, literal, vd_schema_field_path(f), typo ? " (did you mean \"" : "",
              typo ? typo : "", typo ? "\"?)" : "", list.data ? list.data : "");
  vd_buf_free(&list);
  L->errors++;
  if (L->diags) vd_diags_add(L->diags, &e);
}

static void check_enum_literals(loader *L, json_t *rule_obj, const rule *r, size_t lead) {
  const vd_schema *schema = L->rs->schema;
  const char *s = r->when;
  for (size_t fi = 0; fi < vd_schema_field_count(schema); fi++) {
    const vd_schema_field *f = vd_schema_field_at(schema, fi);
    if (vd_schema_field_type(f) != VD_FIELD_ENUM) continue;
    const char *path = vd_schema_field_path(f);
    size_t path_len = strlen(path);
    for (const char *at = strstr(s, path); at; at = strstr(at + 1, path)) {
      size_t begin = (size_t)(at - s), end = begin + path_len;
      if ((begin > 0 && is_name_char(s[begin - 1])) || is_name_char(s[end])) continue;
      size_t lit_start, lit_len;
      size_t j = skip_spaces(s, end);
      if ((s[j] == '=' || s[j] == '!') && s[j + 1] == '=') {
        j = skip_spaces(s, j + 2);
        if (literal_at(s, j, &lit_start, &lit_len))
          check_enum_literal(L, rule_obj, r, lead, f, lit_start, lit_len);
      } else if (s[j] == 'i' && s[j + 1] == 'n' && !is_name_char(s[j + 2])) {
        j = skip_spaces(s, j + 2);
        if (s[j] == '[') {
          j = skip_spaces(s, j + 1);
          size_t next;
          while ((next = literal_at(s, j, &lit_start, &lit_len)) != 0) {
            check_enum_literal(L, rule_obj, r, lead, f, lit_start, lit_len);
            j = skip_spaces(s, next);
            if (s[j] != ',') break;
            j = skip_spaces(s, j + 1);
          }
        }
      }
      /* 'lit' == FIELD */
      size_t k = begin;
      while (k > 0 && strchr(" \t\r\n", s[k - 1])) k--;
      if (k >= 2 && s[k - 1] == '=' && (s[k - 2] == '=' || s[k - 2] == '!')) {
        k -= 2;
        while (k > 0 && strchr(" \t\r\n", s[k - 1])) k--;
        if (k >= 2 && (s[k - 1] == '"' || s[k - 1] == '\'')) {
          char quote = s[k - 1];
          size_t open = k - 1;
          while (open > 0 && s[open - 1] != quote && s[open - 1] != '\\' && s[open - 1] != '\n')
            open--;
          if (open > 0 && s[open - 1] == quote)
            check_enum_literal(L, rule_obj, r, lead, f, open, k - 1 - open);
        }
      }
    }
  }
}

/* Compiles the rule's `when` and maps any error's offset to the file. */
static void compile_when(loader *L, json_t *rule_obj, json_t *when_json, rule *r,
                         bool stage_known) {
  vd_ruleset *rs = L->rs;
  const char *source = json_string_value(when_json);
  size_t lead = 0;
  r->when = trimmed_copy(source, &lead);
  if (!r->when[0]) {
    LOAD_ERROR(L, rule_obj, "when", 0,
               "rule %s: `when` is empty (write `when: true` for a rule "
               "that always applies)",
               r->id);
    return;
  }
  size_t offset = 0;
  vd_error e;
  vd_error_clear(&e);
  r->program = vd_cel_compile(rs->env, r->when, strlen(r->when), &offset, &e);
  if (!r->program && strncmp(e.message, "undeclared reference", 20) == 0)
    explain_unknown_field(rs, r->when, offset, &e);
  if (!r->program) {
    int line = 0, column = 0;
    L->errors++;
    vd_error positioned;
    if (vd_yaml_where_in_scalar(L->doc, rule_obj, "when", 0, lead + offset, &line, &column))
      vd_error_at(&positioned, vd_yaml_name(L->doc), line, column, "rule %s: %s", r->id, e.message);
    else
      vd_error_at(&positioned, vd_yaml_name(L->doc), 0, 0, "rule %s: %s", r->id, e.message);
    if (L->diags) vd_diags_add(L->diags, &positioned);
    return;
  }
  char type_name[64];
  if (!result_type_is_bool(r->program, type_name, sizeof type_name))
    LOAD_ERROR(L, rule_obj, "when", 0,
               "rule %s: `when` must be a condition (bool), but this expression gives %s", r->id,
               type_name);
  check_enum_literals(L, rule_obj, r, lead);
  size_t n = vd_cel_program_ref_count(r->program);
  const size_t *refs = vd_cel_program_refs(r->program);
  for (size_t i = 0; i < n; i++) {
    if (refs[i] < rs->field_slots) {
      const vd_schema_field *f = vd_schema_field_at(rs->schema, refs[i]);
      if (vd_schema_field_section(f) == VD_SECTION_CANDIDATE) r->reads_candidate = true;
      continue;
    }
    r->reads_score = true;
    if (stage_known && r->stage == VD_STAGE_BEFORE_MODEL) {
      const char *name = vd_cel_env_slot_name(rs->env, refs[i]);
      const char *at = strstr(r->when, name);
      int line = 0, column = 0;
      vd_error positioned;
      L->errors++;
      if (vd_yaml_where_in_scalar(L->doc, rule_obj, "when", 0,
                                  lead + (at ? (size_t)(at - r->when) : 0), &line, &column))
        vd_error_at(&positioned, vd_yaml_name(L->doc), line, column,
                    "rule %s: %s is the model's output, so only after_model rules can read it "
                    "(this rule has stage: before_model)",
                    r->id, name);
      else
        vd_error_at(&positioned, vd_yaml_name(L->doc), 0, 0,
                    "rule %s: %s is the model's output, so only after_model rules can read it",
                    r->id, name);
      if (L->diags) vd_diags_add(L->diags, &positioned);
    }
  }
  rs->total_refs += n;
  if (n > rs->max_refs) rs->max_refs = n;
}

static void load_then(loader *L, json_t *rule_obj, rule *r) {
  json_t *then = json_object_get(rule_obj, "then");
  if (!then) {
    LOAD_ERROR(L, rule_obj, "id", 0,
               "rule %s has no `then` (its action, e.g. then: { deny: \"reason\" })", r->id);
    return;
  }
  if (!json_is_object(then) || json_object_size(then) != 1) {
    if (json_is_object(then) && json_object_size(then) > 1) {
      vd_buf names = {0};
      const char *k;
      json_t *v;
      json_object_foreach(then, k, v) vd_buf_printf(&names, "%s%s", names.len ? ", " : "", k);
      LOAD_ERROR(L, rule_obj, "then", 0,
                 "rule %s: `then` has %zu actions (%s); a rule takes exactly one action — split "
                 "it into one rule per action",
                 r->id, json_object_size(then), names.data);
      vd_buf_free(&names);
    } else {
      LOAD_ERROR(L, rule_obj, "then", 0,
                 "rule %s: `then` must be a mapping with exactly one action (deny, allow, adjust, "
                 "route, priority or escalate), e.g. then: { deny: \"reason\" }, got %s",
                 r->id, json_is_object(then) ? "an empty mapping" : vd_yaml_kind(then));
    }
    return;
  }
  const char *key = json_object_iter_key(json_object_iter(then));
  json_t *arg = json_object_get(then, key);
  int action = -1;
  for (int a = 0; a < ACTION_COUNT; a++)
    if (strcmp(key, action_names[a]) == 0) action = a;
  if (action < 0) {
    const char *typo = vd_suggest(key, action_names, ACTION_COUNT);
    if (typo)
      LOAD_ERROR_KEY(L, then, key,
                     "rule %s: unknown action \"%s\" (did you mean \"%s\"?; actions are deny, "
                     "allow, adjust, route, priority, escalate)",
                     r->id, key, typo);
    else
      LOAD_ERROR_KEY(L, then, key,
                     "rule %s: unknown action \"%s\" (actions are deny, allow, adjust, route, "
                     "priority, escalate)",
                     r->id, key);
    return;
  }
  r->action = (vd_action)action;
  r->argument = json_incref(arg);
  if (r->action == VD_ACTION_ADJUST) {
    if (!json_is_number(arg) || !isfinite(json_number_value(arg))) {
      LOAD_ERROR(L, then, key, 0,
                 "rule %s: adjust takes a number to add to the score (e.g. adjust: 0.02), got %s",
                 r->id, vd_yaml_kind(arg));
      return;
    }
    if (fabs(json_number_value(arg)) > VD_RULES_ADJUST_MAX) {
      LOAD_ERROR(L, then, key, 0,
                 "rule %s: adjust %.15g is beyond ±%d: an adjustment shifts a score (an uplift is "
                 "within ±1), and adjustments this large could add up past the range of a "
                 "double, failing every decision they match",
                 r->id, json_number_value(arg), VD_RULES_ADJUST_MAX);
      return;
    }
    r->adjust = json_number_value(arg);
    return;
  }
  if (!json_is_string(arg) || json_string_length(arg) == 0) {
    if (r->action == VD_ACTION_PRIORITY && json_is_number(arg))
      LOAD_ERROR(L, then, key, 0,
                 "rule %s: `then: { priority: ... }` is the triage priority ACTION and takes a "
                 "level name such as urgent; to order evaluation, write `priority: %g` at the "
                 "rule's level, beside `when`",
                 r->id, json_number_value(arg));
    else if (r->action == VD_ACTION_DENY || r->action == VD_ACTION_ALLOW)
      LOAD_ERROR(L, then, key, 0,
                 "rule %s: %s takes the reason as text (e.g. %s: \"Customer opted out\"), got %s",
                 r->id, key, key, json_is_string(arg) ? "an empty string" : vd_yaml_kind(arg));
    else
      LOAD_ERROR(L, then, key, 0, "rule %s: %s takes a non-empty name, got %s", r->id, key,
                 json_is_string(arg) ? "an empty string" : vd_yaml_kind(arg));
    return;
  }
  r->text = json_string_value(arg);
}

static bool load_rule(loader *L, json_t *rules, size_t index, rule *r) {
  size_t before = L->errors;
  json_t *obj = json_array_get(rules, index);
  memset(r, 0, sizeof *r);
  r->file_index = index;
  if (!json_is_object(obj)) {
    LOAD_ERROR(L, rules, NULL, index, "rule #%zu must be a mapping (id, stage, when, then), got %s",
               index + 1, vd_yaml_kind(obj));
    char label[32];
    snprintf(label, sizeof label, "rule #%zu", index + 1);
    r->id = dup_string(label);
    return false;
  }
  json_t *id = json_object_get(obj, "id");
  char label[64];
  snprintf(label, sizeof label, "rule #%zu", index + 1);
  if (!id) {
    LOAD_ERROR(L, rules, NULL, index, "rule #%zu has no id", index + 1);
    r->id = dup_string(label);
  } else if (!json_is_string(id) || !is_rule_id(json_string_value(id))) {
    LOAD_ERROR(L, obj, "id", 0,
               "rule id must be a name of letters, digits, '-', '_' or '.' (e.g. opted-out), "
               "got %s",
               json_is_string(id) ? "characters outside that set" : vd_yaml_kind(id));
    r->id = dup_string(label);
  } else {
    r->id = dup_string(json_string_value(id));
  }
  char what[96];
  snprintf(what, sizeof what, "rule %s", r->id);
  if (!vd_yaml_check_keys(L->doc, obj, rule_keys, COUNT(rule_keys), what, L->diags)) L->errors++;
  json_t *description = json_object_get(obj, "description");
  if (description && !json_is_string(description))
    LOAD_ERROR(L, obj, "description", 0, "rule %s: description must be text, got %s", r->id,
               vd_yaml_kind(description));
  r->description = dup_string(json_is_string(description) ? json_string_value(description) : "");
  json_t *stage = json_object_get(obj, "stage");
  if (!stage) {
    LOAD_ERROR(L, rules, NULL, index,
               "rule %s has no stage (stage: before_model or stage: after_model)", r->id);
  } else if (json_is_string(stage) && strcmp(json_string_value(stage), "before_model") == 0) {
    r->stage = VD_STAGE_BEFORE_MODEL;
  } else if (json_is_string(stage) && strcmp(json_string_value(stage), "after_model") == 0) {
    r->stage = VD_STAGE_AFTER_MODEL;
  } else {
    const char *typo =
        json_is_string(stage) ? vd_suggest(json_string_value(stage), stage_names, 2) : NULL;
    LOAD_ERROR(L, obj, "stage", 0, "rule %s: unknown stage %s%s%s%s (before_model or after_model)",
               r->id, json_is_string(stage) ? json_string_value(stage) : vd_yaml_kind(stage),
               typo ? " (did you mean " : "", typo ? typo : "", typo ? "?)" : "");
  }
  json_t *order = json_object_get(obj, "priority");
  if (order) {
    if (json_is_integer(order)) {
      r->order = json_integer_value(order);
    } else if (json_is_string(order)) {
      LOAD_ERROR(L, obj, "priority", 0,
                 "rule %s: the rule-level `priority` is the EVALUATION ORDER and takes a whole "
                 "number (higher runs first); to set a triage priority, write it as the action: "
                 "then: { priority: %s }",
                 r->id, json_string_value(order));
    } else {
      LOAD_ERROR(L, obj, "priority", 0,
                 "rule %s: the rule-level `priority` (evaluation order) takes a whole number, "
                 "got %s",
                 r->id, vd_yaml_kind(order));
    }
  }
  json_t *when = json_object_get(obj, "when");
  bool stage_known =
      json_is_string(stage) && (strcmp(json_string_value(stage), "before_model") == 0 ||
                                strcmp(json_string_value(stage), "after_model") == 0);
  if (!when) {
    LOAD_ERROR(L, rules, NULL, index, "rule %s has no `when` (its condition)", r->id);
  } else if (json_is_boolean(when)) {
    json_t *text = json_string(json_is_true(when) ? "true" : "false");
    r->when = dup_string(json_string_value(text));
    json_decref(text);
    r->program = vd_cel_compile(L->rs->env, r->when, strlen(r->when), NULL, NULL);
  } else if (!json_is_string(when)) {
    LOAD_ERROR(L, obj, "when", 0,
               "rule %s: `when` must be an expression (text), got %s; quote it if needed", r->id,
               vd_yaml_kind(when));
  } else {
    compile_when(L, obj, when, r, stage_known);
  }
  load_then(L, obj, r);
  return L->errors == before;
}

static void free_rule(rule *r) {
  free(r->id);
  free(r->description);
  free(r->when);
  json_decref(r->argument);
  vd_cel_program_free(r->program);
}

static int compare_rules(const void *pa, const void *pb) {
  const rule *a = pa, *b = pb;
  if (a->stage != b->stage) return a->stage < b->stage ? -1 : 1;
  if (a->order != b->order) return a->order > b->order ? -1 : 1;
  return a->file_index < b->file_index ? -1 : a->file_index > b->file_index ? 1 : 0;
}

static ssize_t find_rule(const vd_ruleset *rs, const char *id) {
  for (size_t i = 0; i < rs->count; i++)
    if (strcmp(rs->rules[i].id, id) == 0) return (ssize_t)i;
  return -1;
}

static void check_rule_reference(loader *L, const json_t *container, const char *key, size_t index,
                                 const json_t *value, const char *what) {
  if (!json_is_string(value)) {
    LOAD_ERROR(L, container, key, index, "%s: expected a rule id, got %s", what,
               vd_yaml_kind(value));
    return;
  }
  /* Without a schema the rules were not loaded (the schema's errors say why): every reference
   * would be reported missing, burying the real mistake under follow-on errors. */
  if (!L->rs->env) return;
  const char *id = json_string_value(value);
  if (find_rule(L->rs, id) >= 0) return;
  const char *ids[512];
  size_t n = 0;
  for (size_t i = 0; i < L->rs->count && n < 512; i++) ids[n++] = L->rs->rules[i].id;
  const char *typo = vd_suggest(id, ids, n);
  LOAD_ERROR(L, container, key, index, "%s: no rule has id \"%s\"%s%s%s", what, id,
             typo ? " (did you mean \"" : "", typo ? typo : "", typo ? "\"?)" : "");
}

static void load_test(loader *L, json_t *tests, size_t index, test_case *t) {
  json_t *obj = json_array_get(tests, index);
  memset(t, 0, sizeof *t);
  char label[64];
  snprintf(label, sizeof label, "test #%zu", index + 1);
  if (!json_is_object(obj)) {
    LOAD_ERROR(L, tests, NULL, index, "%s must be a mapping (name, input, expect), got %s", label,
               vd_yaml_kind(obj));
    t->name = dup_string(label);
    return;
  }
  json_t *name = json_object_get(obj, "name");
  if (!json_is_string(name) || !json_string_length(name)) {
    if (name)
      LOAD_ERROR(L, obj, "name", 0, "%s: name must be text", label);
    else
      LOAD_ERROR(L, tests, NULL, index, "%s has no name", label);
    t->name = dup_string(label);
  } else {
    t->name = dup_string(json_string_value(name));
  }
  char what[VD_ERROR_WHERE_MAX];
  snprintf(what, sizeof what, "test \"%s\"", t->name);
  if (!vd_yaml_check_keys(L->doc, obj, test_keys, COUNT(test_keys), what, L->diags)) L->errors++;
  t->input = json_object_get(obj, "input");
  t->expect = json_object_get(obj, "expect");
  if (!json_is_object(t->input)) {
    if (t->input)
      LOAD_ERROR(L, obj, "input", 0,
                 "%s: input must be a mapping (subject, candidate, context, "
                 "score)",
                 what);
    else
      LOAD_ERROR(L, tests, NULL, index, "%s has no input", what);
    t->input = NULL;
  } else {
    snprintf(what, sizeof what, "the input of test \"%s\"", t->name);
    if (!vd_yaml_check_keys(L->doc, t->input, input_keys, COUNT(input_keys), what, L->diags))
      L->errors++;
    json_t *score = json_object_get(t->input, "score");
    if (score) {
      if (!json_is_object(score)) {
        LOAD_ERROR(L, t->input, "score", 0,
                   "test \"%s\": score must be a mapping (uplift: 0.01, "
                   "...)",
                   t->name);
      } else {
        snprintf(what, sizeof what, "the score of test \"%s\"", t->name);
        if (!vd_yaml_check_keys(L->doc, score, score_names, SCORE_COUNT, what, L->diags))
          L->errors++;
        const char *k;
        json_t *v;
        json_object_foreach(score, k, v) {
          bool is_intent = strcmp(k, "intent") == 0;
          if (is_intent ? !json_is_string(v) : !json_is_number(v))
            LOAD_ERROR(L, score, k, 0, "test \"%s\": score.%s must be %s, got %s", t->name, k,
                       is_intent ? "text" : "a number", vd_yaml_kind(v));
        }
      }
    }
  }
  snprintf(what, sizeof what, "test \"%s\"", t->name);
  if (!json_is_object(t->expect) || json_object_size(t->expect) == 0) {
    if (t->expect)
      LOAD_ERROR(L, obj, "expect", 0,
                 "%s: expect must be a non-empty mapping (eligible, fired, "
                 "...)",
                 what);
    else
      LOAD_ERROR(L, tests, NULL, index, "%s has no expect", what);
    t->expect = NULL;
    return;
  }
  char expect_what[VD_ERROR_WHERE_MAX + 16];
  snprintf(expect_what, sizeof expect_what, "the expect of %s", what);
  if (!vd_yaml_check_keys(L->doc, t->expect, expect_keys, COUNT(expect_keys), expect_what,
                          L->diags))
    L->errors++;
  const char *k;
  json_t *v;
  json_object_foreach(t->expect, k, v) {
    if (strcmp(k, "eligible") == 0 && !json_is_boolean(v))
      LOAD_ERROR(L, t->expect, k, 0, "%s: eligible must be true or false, got %s", what,
                 vd_yaml_kind(v));
    else if (strcmp(k, "decision") == 0 &&
             !(json_is_string(v) && (strcmp(json_string_value(v), "deny") == 0 ||
                                     strcmp(json_string_value(v), "allow") == 0 ||
                                     strcmp(json_string_value(v), "open") == 0)))
      LOAD_ERROR(L, t->expect, k, 0, "%s: decision must be deny, allow or open", what);
    else if (strcmp(k, "decided_by") == 0 && !json_is_null(v))
      check_rule_reference(L, t->expect, k, 0, v, what);
    else if (strcmp(k, "fired") == 0) {
      if (!json_is_array(v)) {
        LOAD_ERROR(L, t->expect, k, 0, "%s: fired must be a list of rule ids, got %s", what,
                   vd_yaml_kind(v));
      } else {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) check_rule_reference(L, v, NULL, i, item, what);
      }
    } else if ((strcmp(k, "adjust") == 0 || strcmp(k, "score") == 0) && !json_is_number(v) &&
               !(strcmp(k, "score") == 0 && json_is_null(v)))
      LOAD_ERROR(L, t->expect, k, 0, "%s: %s must be a number, got %s", what, k, vd_yaml_kind(v));
    else if ((strcmp(k, "route") == 0 || strcmp(k, "priority") == 0 ||
              strcmp(k, "escalate") == 0) &&
             !json_is_string(v) && !json_is_null(v))
      LOAD_ERROR(L, t->expect, k, 0, "%s: %s must be text or null, got %s", what, k,
                 vd_yaml_kind(v));
    else if (strcmp(k, "errors") == 0 && !json_is_integer(v))
      LOAD_ERROR(L, t->expect, k, 0, "%s: errors must be a whole number, got %s", what,
                 vd_yaml_kind(v));
  }
}

/* The schema: a path relative to the rule file, or an inline mapping. */
static vd_schema *load_schema(loader *L, json_t *root, const char *base_dir) {
  json_t *schema = json_object_get(root, "schema");
  if (!schema) {
    LOAD_ERROR(L, NULL, NULL, 0,
               "missing `schema:` (the schema file this ruleset is checked "
               "against, e.g. schema: schema.yaml)");
    return NULL;
  }
  if (json_is_object(schema)) return vd_schema_from_yaml(L->doc, schema, L->diags);
  if (!json_is_string(schema) || !json_string_length(schema)) {
    LOAD_ERROR(L, root, "schema", 0, "schema must be a file name or a mapping, got %s",
               vd_yaml_kind(schema));
    return NULL;
  }
  const char *name = json_string_value(schema);
  vd_buf path = {0};
  if (name[0] == '/' || !base_dir || !base_dir[0])
    vd_buf_puts(&path, name);
  else
    vd_buf_printf(&path, "%s/%s", base_dir, name);
  if (access(path.data, R_OK) != 0) {
    LOAD_ERROR(L, root, "schema", 0, "cannot read the schema file %s", path.data);
    vd_buf_free(&path);
    return NULL;
  }
  size_t errors_before = L->diags ? L->diags->count : 0;
  vd_schema *s = vd_schema_load(path.data, L->diags);
  if (!s) {
    L->errors++;
    if (L->diags && L->diags->count == errors_before)
      LOAD_ERROR(L, root, "schema", 0, "the schema file %s does not load", path.data);
  }
  vd_buf_free(&path);
  return s;
}

static void collect_bound_fields(vd_ruleset *rs) {
  bool *read = calloc(rs->field_slots ? rs->field_slots : 1, sizeof *read);
  for (size_t i = 0; i < rs->count; i++) {
    size_t n = vd_cel_program_ref_count(rs->rules[i].program);
    const size_t *refs = vd_cel_program_refs(rs->rules[i].program);
    for (size_t k = 0; k < n; k++)
      if (refs[k] < rs->field_slots) read[refs[k]] = true;
  }
  for (int c = 0; c < 2; c++)
    rs->bound[c] = calloc(rs->field_slots ? rs->field_slots : 1, sizeof *rs->bound[c]);
  for (size_t i = 0; i < rs->field_slots; i++) {
    if (!read[i]) continue;
    const vd_schema_field *f = vd_schema_field_at(rs->schema, i);
    int c = vd_schema_field_section(f) == VD_SECTION_CANDIDATE;
    rs->bound[c][rs->bound_count[c]++] =
        (bound_field){.slot = i,
                      .field = f,
                      .name = vd_schema_field_name(f),
                      .section = vd_schema_field_section(f),
                      .nested = strchr(vd_schema_field_name(f), '.') != NULL};
  }
  free(read);
}

static void trim_when_in_canonical(json_t *rules) {
  size_t i;
  json_t *r;
  json_array_foreach(rules, i, r) {
    json_t *when = json_object_get(r, "when");
    if (json_is_string(when)) {
      char *t = trimmed_copy(json_string_value(when), NULL);
      json_object_set_new(r, "when", json_string(t));
      free(t);
    } else if (json_is_boolean(when)) {
      json_object_set_new(r, "when", json_string(json_is_true(when) ? "true" : "false"));
    }
    if (!json_object_get(r, "priority")) json_object_set_new(r, "priority", json_integer(0));
    if (!json_object_get(r, "description")) json_object_set_new(r, "description", json_string(""));
  }
}

static void build_canonical(vd_ruleset *rs) {
  json_t *c = json_deep_copy(rs->root);
  json_object_set(c, "schema", (json_t *)vd_schema_canonical(rs->schema));
  json_object_set_new(c, "default_score", json_real(rs->default_score));
  if (!json_object_get(c, "description")) json_object_set_new(c, "description", json_string(""));
  trim_when_in_canonical(json_object_get(c, "rules"));
  if (!json_object_get(c, "tests")) json_object_set_new(c, "tests", json_array());
  rs->canonical = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
  vd_sha256_hex(rs->canonical, strlen(rs->canonical), rs->version);
  json_decref(c);
}

static vd_ruleset *load_document_unsorted(const vd_yaml_doc *doc, const char *base_dir,
                                          unsigned flags, vd_diags *diags) {
  loader L = {.doc = doc, .diags = diags};
  json_t *root = vd_yaml_root(doc);
  if (!json_is_object(root)) {
    vd_yaml_diag(doc, NULL, NULL, 0, diags,
                 "a rule file is a mapping with ruleset, schema, default_score, rules and tests; "
                 "got %s",
                 vd_yaml_kind(root));
    return NULL;
  }
  vd_ruleset *rs = calloc(1, sizeof *rs);
  atomic_init(&rs->references, 1);
  L.rs = rs;
  rs->root = json_incref(root);
  if (!vd_yaml_check_keys(doc, root, top_keys, COUNT(top_keys), "the rule file", diags)) L.errors++;
  json_t *name = json_object_get(root, "ruleset");
  if (!json_is_string(name) || !json_string_length(name)) {
    if (name)
      LOAD_ERROR(&L, root, "ruleset", 0, "ruleset (the ruleset's name) must be non-empty text");
    else
      LOAD_ERROR(&L, NULL, NULL, 0, "missing `ruleset: NAME` (the ruleset's name)");
  }
  rs->name = dup_string(json_is_string(name) ? json_string_value(name) : "");
  json_t *description = json_object_get(root, "description");
  if (description && !json_is_string(description))
    LOAD_ERROR(&L, root, "description", 0, "description must be text, got %s",
               vd_yaml_kind(description));
  rs->description = dup_string(json_is_string(description) ? json_string_value(description) : "");
  json_t *default_score = json_object_get(root, "default_score");
  if (!default_score)
    LOAD_ERROR(&L, NULL, NULL, 0,
               "missing `default_score:` (the score a candidate gets when the model does not "
               "score it)");
  else if (!json_is_number(default_score) || !isfinite(json_number_value(default_score)))
    LOAD_ERROR(&L, root, "default_score", 0, "default_score must be a number, got %s",
               vd_yaml_kind(default_score));
  else
    rs->default_score = json_number_value(default_score);
  rs->schema = load_schema(&L, root, base_dir);
  if (!rs->schema) L.errors++;
  vd_error e;
  if (rs->schema && !declare_variables(rs, &e)) {
    L.errors++;
    if (diags) vd_diags_add(diags, &e);
  }
  json_t *rules = json_object_get(root, "rules");
  if (!json_is_array(rules)) {
    if (rules)
      LOAD_ERROR(&L, root, "rules", 0,
                 "rules must be a list of rules (each starting `- id:`), "
                 "got %s",
                 vd_yaml_kind(rules));
    else
      LOAD_ERROR(&L, NULL, NULL, 0, "missing `rules:` (the list of rules)");
  } else if (rs->env) {
    size_t n = json_array_size(rules);
    rs->rules = calloc(n ? n : 1, sizeof *rs->rules);
    for (size_t i = 0; i < n; i++) {
      rule *r = &rs->rules[rs->count];
      load_rule(&L, rules, i, r);
      /* Duplicate ids: named at the second one, pointing back at the first. */
      ssize_t first = find_rule(rs, r->id);
      if (first >= 0 && json_object_get(json_array_get(rules, i), "id")) {
        int line = 0, column = 0;
        vd_yaml_where(doc, json_array_get(rules, rs->rules[first].file_index), "id", 0, &line,
                      &column);
        LOAD_ERROR(&L, json_array_get(rules, i), "id", 0,
                   "duplicate rule id \"%s\" (first defined at line %d); rule ids must be unique",
                   r->id, line);
      }
      rs->count++;
    }
  }
  json_t *tests = json_object_get(root, "tests");
  if (tests && !json_is_array(tests)) {
    LOAD_ERROR(&L, root, "tests", 0,
               "tests must be a list of tests (each starting `- name:`), "
               "got %s",
               vd_yaml_kind(tests));
  } else if (tests) {
    size_t n = json_array_size(tests);
    rs->tests = calloc(n ? n : 1, sizeof *rs->tests);
    for (size_t i = 0; i < n; i++) load_test(&L, tests, i, &rs->tests[rs->test_count++]);
    json_t *seen = json_object(); /* name → its first test's index: linear, not pairwise */
    for (size_t i = 0; seen && i < rs->test_count; i++) {
      const char *name = rs->tests[i].name;
      const json_t *first = json_object_get(seen, name);
      if (!first) {
        json_object_set_new(seen, name, json_integer((json_int_t)i));
        continue;
      }
      int line = 0, column = 0;
      vd_yaml_where(doc, json_array_get(tests, (size_t)json_integer_value(first)), "name", 0, &line,
                    &column);
      LOAD_ERROR(&L, tests, NULL, i, "duplicate test name \"%s\" (first at line %d)", name, line);
    }
    json_decref(seen);
  }
  if (L.errors) {
    vd_ruleset_free(rs);
    return NULL;
  }
  qsort(rs->rules, rs->count, sizeof *rs->rules, compare_rules);
  for (int s = 0; s < 2; s++) {
    size_t b = 0;
    while (b < rs->count && (int)rs->rules[b].stage < s) b++;
    size_t e2 = b;
    while (e2 < rs->count && (int)rs->rules[e2].stage == s) {
      if (rs->rules[e2].reads_candidate) rs->stage_reads_candidate[s] = true;
      e2++;
    }
    rs->stage_begin[s] = b;
    rs->stage_end[s] = e2;
  }
  collect_bound_fields(rs);
  build_canonical(rs);
  if (!(flags & VD_RULESET_SKIP_TESTS)) {
    for (size_t i = 0; i < rs->test_count; i++) {
      vd_ruleset_test_result result;
      vd_ruleset_run_test(rs, i, &result);
      if (!result.passed)
        LOAD_ERROR(&L, tests, NULL, i, "test \"%s\" failed: %s", result.name, result.difference);
    }
    if (L.errors) {
      vd_ruleset_free(rs);
      return NULL;
    }
  }
  return rs;
}

/* Orders diags[from..] by file (in order of first appearance), then line and column, so a
 * person reads the mistakes top to bottom. Stable. */
static void sort_diags(vd_diags *diags, size_t from) {
  if (!diags) return;
  for (size_t i = from + 1; i < diags->count; i++) {
    vd_error item = diags->items[i];
    size_t rank_item = from;
    while (rank_item < i && strcmp(diags->items[rank_item].file, item.file) != 0) rank_item++;
    size_t j = i;
    while (j > from) {
      const vd_error *prev = &diags->items[j - 1];
      size_t rank_prev = from;
      while (strcmp(diags->items[rank_prev].file, prev->file) != 0) rank_prev++;
      bool after =
          rank_prev > rank_item ||
          (rank_prev == rank_item &&
           (prev->line > item.line || (prev->line == item.line && prev->column > item.column)));
      if (!after) break;
      diags->items[j] = *prev;
      j--;
    }
    diags->items[j] = item;
  }
}

static vd_ruleset *load_document(const vd_yaml_doc *doc, const char *base_dir, unsigned flags,
                                 vd_diags *diags) {
  size_t first_diag = diags ? diags->count : 0;
  vd_ruleset *rs = load_document_unsorted(doc, base_dir, flags, diags);
  if (!rs) sort_diags(diags, first_diag);
  return rs;
}

vd_ruleset *vd_ruleset_load_string(const char *text, size_t len, const char *name,
                                   const char *base_dir, unsigned flags, vd_diags *diags) {
  vd_error e;
  vd_yaml_doc *doc = vd_yaml_load_string(text, len, name, &e);
  if (!doc) {
    if (diags) vd_diags_add(diags, &e);
    return NULL;
  }
  vd_ruleset *rs = load_document(doc, base_dir, flags, diags);
  vd_yaml_free(doc);
  return rs;
}

vd_ruleset *vd_ruleset_load_flags(const char *path, unsigned flags, vd_diags *diags) {
  vd_error e;
  vd_yaml_doc *doc = vd_yaml_load_file(path, &e);
  if (!doc) {
    if (diags) vd_diags_add(diags, &e);
    return NULL;
  }
  char *copy = dup_string(path);
  vd_ruleset *rs = load_document(doc, dirname(copy), flags, diags);
  free(copy);
  vd_yaml_free(doc);
  return rs;
}

vd_ruleset *vd_ruleset_load(const char *path, vd_diags *diags) {
  return vd_ruleset_load_flags(path, 0, diags);
}

vd_ruleset *vd_ruleset_retain(vd_ruleset *rs) {
  if (rs) atomic_fetch_add(&rs->references, 1);
  return rs;
}

void vd_ruleset_free(vd_ruleset *rs) {
  if (!rs || atomic_fetch_sub(&rs->references, 1) != 1) return;
  for (size_t i = 0; i < rs->count; i++) free_rule(&rs->rules[i]);
  free(rs->rules);
  free(rs->bound[0]);
  free(rs->bound[1]);
  for (size_t i = 0; i < rs->test_count; i++) free(rs->tests[i].name);
  free(rs->tests);
  vd_cel_env_free(rs->env);
  vd_schema_free(rs->schema);
  json_decref(rs->root);
  free(rs->name);
  free(rs->description);
  free(rs->canonical);
  free(rs);
}

const char *vd_ruleset_name(const vd_ruleset *rs) { return rs->name; }
const char *vd_ruleset_version(const vd_ruleset *rs) { return rs->version; }
const char *vd_ruleset_canonical(const vd_ruleset *rs) { return rs->canonical; }
double vd_ruleset_default_score(const vd_ruleset *rs) { return rs->default_score; }
const vd_schema *vd_ruleset_schema(const vd_ruleset *rs) { return rs->schema; }
size_t vd_ruleset_rule_count(const vd_ruleset *rs) { return rs->count; }
const char *vd_ruleset_rule_id(const vd_ruleset *rs, size_t i) { return rs->rules[i].id; }
const char *vd_ruleset_rule_description(const vd_ruleset *rs, size_t i) {
  return rs->rules[i].description;
}
vd_stage vd_ruleset_rule_stage(const vd_ruleset *rs, size_t i) { return rs->rules[i].stage; }
vd_action vd_ruleset_rule_action(const vd_ruleset *rs, size_t i) { return rs->rules[i].action; }
const json_t *vd_ruleset_rule_argument(const vd_ruleset *rs, size_t i) {
  return rs->rules[i].argument;
}
const char *vd_ruleset_rule_when(const vd_ruleset *rs, size_t i) { return rs->rules[i].when; }
bool vd_ruleset_stage_reads_candidate(const vd_ruleset *rs, vd_stage stage) {
  return rs->stage_reads_candidate[stage];
}
size_t vd_ruleset_rule_fields(const vd_ruleset *rs, size_t index, const char **fields, size_t max) {
  const vd_cel_program *p = rs->rules[index].program;
  size_t n = vd_cel_program_ref_count(p), count = 0;
  const size_t *refs = vd_cel_program_refs(p);
  for (size_t i = 0; i < n; i++) {
    if (refs[i] >= rs->field_slots) continue;
    if (count < max) fields[count] = vd_schema_field_path(vd_schema_field_at(rs->schema, refs[i]));
    count++;
  }
  return count;
}
size_t vd_ruleset_test_count(const vd_ruleset *rs) { return rs->test_count; }

/* ---- frames -------------------------------------------------------------------------------- */

enum { FRAME_SCRATCH = 4096, EVAL_SCRATCH = 4096, ERROR_TEXT = 160 };

struct vd_rules_frame {
  const vd_ruleset *rs;
  vd_cel_value *slots;
  vd_cel_arena request_arena, candidate_arena, eval_arena;
  const json_t *request, *candidate;
  vd_rules_scores scores;
  bool have_scores;
  size_t *read_slots; /* scratch for one evaluation, capacity max_refs */
  /* Results of rules that read only subject.* and context.*: the same for every candidate of a
   * request, so each is evaluated once per bound request. */
  uint64_t generation; /* bumped by bind_request */
  struct cached_result {
    uint64_t generation; /* valid when equal to the frame's */
    uint8_t result;
    uint32_t read_count;
    char error[ERROR_TEXT];
  } * cache;
  size_t *cache_reads; /* rule i's reads at [i * max_refs] */
  /* The arenas' first memory; last, because it is not cleared (see vd_rules_frame_new). */
  struct frame_scratch {
    unsigned char request[FRAME_SCRATCH];
    unsigned char candidate[FRAME_SCRATCH];
    unsigned char eval[EVAL_SCRATCH];
  } scratch;
};

vd_rules_frame *vd_rules_frame_new(const vd_ruleset *rs) {
  /* Every field is cleared but the 12 KiB of arena scratch: arena memory is never read before it
   * is written (heap chunks are not cleared either), and clearing it cost a decision ~12,000
   * instructions (a frame is made per decision). */
  vd_rules_frame *f = malloc(sizeof *f);
  if (!f) return NULL;
  memset(f, 0, offsetof(vd_rules_frame, scratch));
  f->rs = rs;
  f->slots = calloc(rs->slot_count ? rs->slot_count : 1, sizeof *f->slots);
  f->read_slots = calloc(rs->max_refs ? rs->max_refs : 1, sizeof *f->read_slots);
  f->cache = calloc(rs->count ? rs->count : 1, sizeof *f->cache);
  size_t cache_slots = rs->count * rs->max_refs;
  f->cache_reads = calloc(cache_slots ? cache_slots : 1, sizeof *f->cache_reads);
  f->generation = 1;
  if (!f->slots || !f->read_slots || !f->cache || !f->cache_reads) {
    vd_rules_frame_free(f);
    return NULL;
  }
  vd_cel_arena_init(&f->request_arena, f->scratch.request, sizeof f->scratch.request);
  vd_cel_arena_init(&f->candidate_arena, f->scratch.candidate, sizeof f->scratch.candidate);
  vd_cel_arena_init(&f->eval_arena, f->scratch.eval, sizeof f->scratch.eval);
  return f;
}

void vd_rules_frame_free(vd_rules_frame *f) {
  if (!f) return;
  vd_cel_arena_free(&f->request_arena);
  vd_cel_arena_free(&f->candidate_arena);
  vd_cel_arena_free(&f->eval_arena);
  free(f->slots);
  free(f->read_slots);
  free(f->cache);
  free(f->cache_reads);
  free(f);
}

static bool scalar_value(vd_field_type t, const json_t *json, vd_cel_value *out) {
  switch (t) {
    case VD_FIELD_BOOL:
      if (!json_is_boolean(json)) return false;
      *out = vd_cel_bool(json_is_true(json));
      return true;
    case VD_FIELD_INT:
      if (!json_is_integer(json)) return false;
      *out = vd_cel_int(json_integer_value(json));
      return true;
    case VD_FIELD_DOUBLE:
      if (!json_is_number(json)) return false;
      *out = vd_cel_double(json_number_value(json));
      return true;
    case VD_FIELD_STRING:
    case VD_FIELD_ENUM:
      if (!json_is_string(json)) return false;
      *out = vd_cel_string(json_string_value(json), json_string_length(json));
      return true;
    case VD_FIELD_TIMESTAMP:
      if (!json_is_string(json)) return false;
      return vd_cel_timestamp_parse(json_string_value(json), json_string_length(json), out, NULL);
    case VD_FIELD_LIST:
      return false;
  }
  return false;
}

static bool bind_field(const vd_schema_field *field, const json_t *json, vd_cel_arena *arena,
                       vd_cel_value *out, vd_error *err) {
  if (!json || json_is_null(json)) {
    *out = (vd_cel_value){.kind = VD_CEL_UNSET};
    return true;
  }
  vd_field_type t = vd_schema_field_type(field);
  if (t != VD_FIELD_LIST) {
    if (scalar_value(t, json, out)) return true;
    return vd_error_field(err, vd_schema_field_path(field),
                          "expected %s (bind only requests normalised by vd_schema_validate)",
                          vd_schema_field_type_name(field));
  }
  if (!json_is_array(json))
    return vd_error_field(err, vd_schema_field_path(field), "expected a list");
  size_t n = json_array_size(json);
  vd_cel_list *list = vd_cel_arena_alloc(arena, sizeof *list);
  vd_cel_value *items = n ? vd_cel_arena_alloc(arena, n * sizeof *items) : NULL;
  if (!list || (n && !items)) return vd_error_set(err, "out of memory");
  for (size_t i = 0; i < n; i++)
    if (!scalar_value(vd_schema_field_element_type(field), json_array_get(json, i), &items[i]))
      return vd_error_field(err, vd_schema_field_path(field), "list item %zu has the wrong type",
                            i);
  list->count = n;
  list->items = items;
  *out = vd_cel_list_value(list);
  return true;
}

/* Binds the fields some rule reads (the others are never looked at) from the request's
 * subject/context objects or from the candidate object. */
static bool bind_section(vd_rules_frame *f, bool candidate, const json_t *source,
                         vd_cel_arena *arena, vd_error *err) {
  const vd_ruleset *rs = f->rs;
  const bound_field *fields = rs->bound[candidate];
  size_t n = rs->bound_count[candidate];
  const json_t *sections[3] = {NULL, source, NULL};
  if (!candidate && source) {
    sections[VD_SECTION_SUBJECT] = json_object_get(source, "subject");
    sections[VD_SECTION_CONTEXT] = json_object_get(source, "context");
  }
  for (size_t i = 0; i < n; i++) {
    const bound_field *b = &fields[i];
    const json_t *value;
    if (!source)
      value = NULL;
    else if (b->nested)
      value = vd_schema_field_get(b->field, source);
    else
      value = json_object_get(sections[b->section], b->name);
    if (!bind_field(b->field, value, arena, &f->slots[b->slot], err)) return false;
  }
  return true;
}

static void clear_scores(vd_rules_frame *f) {
  for (size_t s = 0; s < SCORE_COUNT; s++)
    f->slots[f->rs->field_slots + s] = (vd_cel_value){.kind = VD_CEL_UNSET};
  f->have_scores = false;
}

bool vd_rules_frame_bind_request(vd_rules_frame *f, const json_t *request, vd_error *err) {
  vd_cel_arena_reset(&f->request_arena);
  vd_cel_arena_reset(&f->candidate_arena);
  f->generation++;
  f->request = request;
  f->candidate = NULL;
  clear_scores(f);
  if (!bind_section(f, true, NULL, &f->candidate_arena, err)) return false;
  return bind_section(f, false, request, &f->request_arena, err);
}

bool vd_rules_frame_bind_candidate(vd_rules_frame *f, const json_t *candidate, vd_error *err) {
  vd_cel_arena_reset(&f->candidate_arena);
  f->candidate = candidate;
  clear_scores(f);
  return bind_section(f, true, candidate, &f->candidate_arena, err);
}

void vd_rules_frame_bind_scores(vd_rules_frame *f, const vd_rules_scores *scores) {
  f->scores = *scores;
  f->have_scores = true;
  vd_cel_value *s = f->slots + f->rs->field_slots;
  s[SCORE_P_TREATMENT] = vd_cel_double(scores->p_treatment);
  s[SCORE_P_CONTROL] = vd_cel_double(scores->p_control);
  s[SCORE_UPLIFT] = vd_cel_double(scores->uplift);
  s[SCORE_MARGIN] = vd_cel_double(scores->margin);
  s[SCORE_VALUE] = vd_cel_double(scores->value);
  s[SCORE_CONFIDENCE] = vd_cel_double(scores->confidence);
  s[SCORE_INTENT] = scores->intent ? vd_cel_string(scores->intent, strlen(scores->intent))
                                   : (vd_cel_value){.kind = VD_CEL_UNSET};
}

/* ---- outcomes ------------------------------------------------------------------------------ */

typedef struct record {
  uint32_t rule;
  uint8_t result;   /* vd_rule_result */
  uint32_t read_at; /* into outcome->reads */
  uint32_t read_count;
} record;

struct vd_rules_outcome {
  const vd_ruleset *rs;
  record *records;
  size_t count;
  size_t *reads;
  size_t reads_used;
  char (*errors)[ERROR_TEXT]; /* by record */
  bool stage_done[2];
  vd_rules_decision decision;
  ssize_t decided_by;
  double adjust;
  ssize_t value_rule[3]; /* route, priority, escalate */
  size_t matched, error_count;
  const json_t *request, *candidate;
  vd_rules_scores scores;
  bool have_scores;
};

vd_rules_outcome *vd_rules_outcome_new(const vd_ruleset *rs) {
  vd_rules_outcome *o = calloc(1, sizeof *o);
  if (!o) return NULL;
  o->rs = rs;
  o->records = calloc(rs->count ? rs->count : 1, sizeof *o->records);
  o->reads = calloc(rs->total_refs ? rs->total_refs : 1, sizeof *o->reads);
  o->errors = calloc(rs->count ? rs->count : 1, sizeof *o->errors);
  if (!o->records || !o->reads || !o->errors) {
    vd_rules_outcome_free(o);
    return NULL;
  }
  vd_rules_outcome_reset(o);
  return o;
}

void vd_rules_outcome_free(vd_rules_outcome *o) {
  if (!o) return;
  free(o->records);
  free(o->reads);
  free(o->errors);
  free(o);
}

void vd_rules_outcome_reset(vd_rules_outcome *o) {
  o->count = o->reads_used = 0;
  o->stage_done[0] = o->stage_done[1] = false;
  o->decision = VD_DECISION_OPEN;
  o->decided_by = -1;
  o->adjust = 0;
  o->value_rule[0] = o->value_rule[1] = o->value_rule[2] = -1;
  o->matched = o->error_count = 0;
  o->request = o->candidate = NULL;
  o->have_scores = false;
}

static void apply(vd_rules_outcome *o, size_t index, const rule *r) {
  switch (r->action) {
    case VD_ACTION_DENY:
      o->decision = VD_DECISION_DENY;
      o->decided_by = (ssize_t)index;
      break;
    case VD_ACTION_ALLOW:
      if (o->decision == VD_DECISION_OPEN) {
        o->decision = VD_DECISION_ALLOW;
        o->decided_by = (ssize_t)index;
      }
      break;
    case VD_ACTION_ADJUST:
      o->adjust += r->adjust;
      break;
    case VD_ACTION_ROUTE:
    case VD_ACTION_PRIORITY:
    case VD_ACTION_ESCALATE: {
      ssize_t *slot = &o->value_rule[r->action - VD_ACTION_ROUTE];
      if (*slot < 0) *slot = (ssize_t)index;
      break;
    }
  }
}

bool vd_ruleset_eval_stage(const vd_ruleset *rs, vd_rules_frame *frame, vd_stage stage,
                           vd_rules_outcome *o, vd_error *err) {
  if (frame->rs != rs || o->rs != rs)
    return vd_error_set(err, "frame or outcome was made for another ruleset");
  if (o->stage_done[stage])
    return vd_error_set(err, "stage %s was already evaluated into this outcome (reset it first)",
                        stage_names[stage]);
  if (stage == VD_STAGE_AFTER_MODEL && !frame->have_scores)
    return vd_error_set(err,
                        "after_model rules need the model's scores (vd_rules_frame_bind_scores)");
  o->stage_done[stage] = true;
  o->request = frame->request;
  o->candidate = frame->candidate;
  if (frame->have_scores) {
    o->scores = frame->scores;
    o->have_scores = true;
  }
  for (size_t i = rs->stage_begin[stage]; i < rs->stage_end[stage]; i++) {
    if (o->decision == VD_DECISION_DENY) break; /* a deny settles at once */
    const rule *r = &rs->rules[i];
    record *rec = &o->records[o->count];
    rec->rule = (uint32_t)i;
    rec->read_at = (uint32_t)o->reads_used;
    struct cached_result *cached = &frame->cache[i];
    size_t *cached_reads = frame->cache_reads + i * rs->max_refs;
    bool cacheable = !r->reads_candidate && !r->reads_score;
    if (cacheable && cached->generation == frame->generation) {
      rec->result = cached->result;
      rec->read_count = cached->read_count;
      memcpy(o->reads + o->reads_used, cached_reads, cached->read_count * sizeof *cached_reads);
      if (rec->result == VD_RULE_ERROR) memcpy(o->errors[o->count], cached->error, ERROR_TEXT);
    } else {
      size_t read_count = 0;
      vd_cel_value result;
      vd_cel_arena_reset(&frame->eval_arena);
      vd_cel_eval(r->program, frame->slots, rs->slot_count, &frame->eval_arena, &result,
                  o->reads + o->reads_used, &read_count);
      rec->read_count = (uint32_t)read_count;
      if (result.kind == VD_CEL_BOOL) {
        rec->result = result.v.b ? VD_RULE_MATCHED : VD_RULE_NOT_MATCHED;
      } else {
        rec->result = VD_RULE_ERROR;
        if (result.kind == VD_CEL_ERROR)
          snprintf(o->errors[o->count], ERROR_TEXT, "%s", result.v.error.message);
        else
          snprintf(o->errors[o->count], ERROR_TEXT, "condition gave %s, not bool",
                   vd_cel_kind_name(result.kind));
      }
      if (cacheable) {
        cached->generation = frame->generation;
        cached->result = rec->result;
        cached->read_count = rec->read_count;
        memcpy(cached_reads, o->reads + o->reads_used, read_count * sizeof *cached_reads);
        if (rec->result == VD_RULE_ERROR) memcpy(cached->error, o->errors[o->count], ERROR_TEXT);
      }
    }
    o->reads_used += rec->read_count;
    bool effective = rec->result == VD_RULE_MATCHED;
    if (rec->result == VD_RULE_ERROR) {
      o->error_count++;
      effective = r->action == VD_ACTION_DENY; /* fail closed */
    }
    o->count++;
    if (rec->result == VD_RULE_MATCHED) o->matched++;
    if (effective) apply(o, i, r);
  }
  return true;
}

vd_rules_decision vd_rules_outcome_decision(const vd_rules_outcome *o) { return o->decision; }
bool vd_rules_outcome_settled(const vd_rules_outcome *o) {
  return o->decision != VD_DECISION_OPEN || o->value_rule[0] >= 0;
}
const char *vd_rules_outcome_decided_by(const vd_rules_outcome *o) {
  return o->decided_by >= 0 ? o->rs->rules[o->decided_by].id : NULL;
}
const char *vd_rules_outcome_reason(const vd_rules_outcome *o) {
  return o->decided_by >= 0 ? o->rs->rules[o->decided_by].text : NULL;
}
double vd_rules_outcome_adjust(const vd_rules_outcome *o) { return o->adjust; }
const char *vd_rules_outcome_value(const vd_rules_outcome *o, vd_action action,
                                   const char **rule_id) {
  ssize_t index = -1;
  if (action >= VD_ACTION_ROUTE && action <= VD_ACTION_ESCALATE)
    index = o->value_rule[action - VD_ACTION_ROUTE];
  if (rule_id) *rule_id = index >= 0 ? o->rs->rules[index].id : NULL;
  return index >= 0 ? o->rs->rules[index].text : NULL;
}
size_t vd_rules_outcome_evaluated(const vd_rules_outcome *o) { return o->count; }
size_t vd_rules_outcome_matched(const vd_rules_outcome *o) { return o->matched; }
size_t vd_rules_outcome_errors(const vd_rules_outcome *o) { return o->error_count; }
size_t vd_rules_outcome_fired(const vd_rules_outcome *o, const char **ids, size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < o->count; i++) {
    if (o->records[i].result != VD_RULE_MATCHED) continue;
    if (n < max) ids[n] = o->rs->rules[o->records[i].rule].id;
    n++;
  }
  return n;
}

static const char *decision_name(vd_rules_decision d) {
  return d == VD_DECISION_DENY ? "deny" : d == VD_DECISION_ALLOW ? "allow" : "open";
}

/* The value a rule read, from the bound JSON (fields) or the scores. */
static void emit_read_value(const vd_rules_outcome *o, size_t slot, vd_json_emit *e) {
  const vd_ruleset *rs = o->rs;
  if (slot < rs->field_slots) {
    const vd_schema_field *f = vd_schema_field_at(rs->schema, slot);
    const json_t *source =
        vd_schema_field_section(f) == VD_SECTION_CANDIDATE ? o->candidate : o->request;
    vd_json_emit_value(e, source ? vd_schema_field_get(f, source) : NULL);
    return;
  }
  if (!o->have_scores) {
    vd_json_emit_null(e);
    return;
  }
  const vd_rules_scores *s = &o->scores;
  switch ((score_var)(slot - rs->field_slots)) {
    case SCORE_P_TREATMENT:
      vd_json_emit_real(e, s->p_treatment);
      return;
    case SCORE_P_CONTROL:
      vd_json_emit_real(e, s->p_control);
      return;
    case SCORE_UPLIFT:
      vd_json_emit_real(e, s->uplift);
      return;
    case SCORE_MARGIN:
      vd_json_emit_real(e, s->margin);
      return;
    case SCORE_VALUE:
      vd_json_emit_real(e, s->value);
      return;
    case SCORE_CONFIDENCE:
      vd_json_emit_real(e, s->confidence);
      return;
    case SCORE_INTENT:
      vd_json_emit_string(e, s->intent);
      return;
    case SCORE_COUNT:
      break;
  }
  vd_json_emit_null(e);
}

void vd_rules_outcome_write(const vd_rules_outcome *o, vd_json_emit *e) {
  const vd_ruleset *rs = o->rs;
  vd_json_emit_object(e);
  vd_json_emit_member_string(e, "decision", decision_name(o->decision));
  vd_json_emit_member_string(e, "decided_by",
                             o->decided_by >= 0 ? rs->rules[o->decided_by].id : NULL);
  vd_json_emit_member_string(e, "reason",
                             o->decided_by >= 0 ? rs->rules[o->decided_by].text : NULL);
  vd_json_emit_member_real(e, "adjust", o->adjust);
  for (int a = VD_ACTION_ROUTE; a <= VD_ACTION_ESCALATE; a++) {
    ssize_t index = o->value_rule[a - VD_ACTION_ROUTE];
    if (index < 0) continue;
    vd_json_emit_member_string(e, action_names[a], rs->rules[index].text);
  }
  vd_json_emit_key(e, "rules");
  vd_json_emit_array(e);
  for (size_t i = 0; i < o->count; i++) {
    const record *rec = &o->records[i];
    const rule *r = &rs->rules[rec->rule];
    vd_json_emit_object(e);
    vd_json_emit_member_string(e, "id", r->id);
    vd_json_emit_member_string(e, "stage", stage_names[r->stage]);
    vd_json_emit_member_string(e, "action", action_names[r->action]);
    vd_json_emit_member_bool(e, "matched", rec->result == VD_RULE_MATCHED);
    if (rec->result == VD_RULE_ERROR) {
      vd_json_emit_member_string(e, "error", o->errors[i]);
    }
    vd_json_emit_key(e, "read");
    vd_json_emit_object(e);
    for (size_t k = 0; k < rec->read_count; k++) {
      size_t slot = o->reads[rec->read_at + k];
      vd_json_emit_key(e, vd_cel_env_slot_name(rs->env, slot));
      emit_read_value(o, slot, e);
    }
    vd_json_emit_end(e);
    vd_json_emit_end(e);
  }
  vd_json_emit_end(e);
  vd_json_emit_end(e);
}

json_t *vd_rules_outcome_to_json(const vd_rules_outcome *o) {
  vd_json_emit e;
  vd_json_emit_tree(&e);
  vd_rules_outcome_write(o, &e);
  return vd_json_emit_take(&e);
}

/* ---- the file's own tests ------------------------------------------------------------------ */

static void fired_text(const vd_rules_outcome *o, vd_buf *out) {
  vd_buf_puts(out, "[");
  size_t n = 0;
  for (size_t i = 0; i < o->count; i++) {
    if (o->records[i].result != VD_RULE_MATCHED) continue;
    vd_buf_printf(out, "%s%s", n++ ? ", " : "", o->rs->rules[o->records[i].rule].id);
  }
  vd_buf_puts(out, "]");
}

static void json_list_text(const json_t *list, vd_buf *out) {
  vd_buf_puts(out, "[");
  size_t i;
  json_t *v;
  json_array_foreach(list, i, v) vd_buf_printf(out, "%s%s", i ? ", " : "", json_string_value(v));
  vd_buf_puts(out, "]");
}

static void text_or_null(const char *s, vd_buf *out) {
  if (s)
    vd_buf_printf(out, "%s", s);
  else
    vd_buf_puts(out, "null");
}

static bool same_number(double a, double b) { return fabs(a - b) <= 1e-9 * (1 + fabs(b)); }

/* Appends "key: expected X, got Y" differences. */
static void compare(const vd_rules_outcome *o, double score, bool eligible, const json_t *expect,
                    vd_buf *diff) {
  const char *key;
  json_t *want;
  json_object_foreach((json_t *)expect, key, want) {
    vd_buf got = {0}, wanted = {0};
    bool equal = true;
    if (strcmp(key, "eligible") == 0) {
      equal = json_is_true(want) == eligible;
      vd_buf_puts(&wanted, json_is_true(want) ? "true" : "false");
      vd_buf_puts(&got, eligible ? "true" : "false");
    } else if (strcmp(key, "decision") == 0) {
      equal = strcmp(json_string_value(want), decision_name(o->decision)) == 0;
      vd_buf_puts(&wanted, json_string_value(want));
      vd_buf_puts(&got, decision_name(o->decision));
    } else if (strcmp(key, "decided_by") == 0) {
      const char *by = vd_rules_outcome_decided_by(o);
      const char *w = json_is_string(want) ? json_string_value(want) : NULL;
      equal = (!by && !w) || (by && w && strcmp(by, w) == 0);
      text_or_null(w, &wanted);
      text_or_null(by, &got);
    } else if (strcmp(key, "fired") == 0) {
      json_list_text(want, &wanted);
      fired_text(o, &got);
      equal = strcmp(wanted.data, got.data) == 0;
    } else if (strcmp(key, "adjust") == 0) {
      equal = same_number(o->adjust, json_number_value(want));
      vd_buf_printf(&wanted, "%.15g", json_number_value(want));
      vd_buf_printf(&got, "%.15g", o->adjust);
    } else if (strcmp(key, "score") == 0) {
      if (json_is_null(want))
        vd_buf_puts(&wanted, "null");
      else
        vd_buf_printf(&wanted, "%.15g", json_number_value(want));
      if (eligible)
        vd_buf_printf(&got, "%.15g", score);
      else
        vd_buf_puts(&got, "null");
      equal =
          json_is_null(want) ? !eligible : eligible && same_number(score, json_number_value(want));
    } else if (strcmp(key, "route") == 0 || strcmp(key, "priority") == 0 ||
               strcmp(key, "escalate") == 0) {
      vd_action a = strcmp(key, "route") == 0      ? VD_ACTION_ROUTE
                    : strcmp(key, "priority") == 0 ? VD_ACTION_PRIORITY
                                                   : VD_ACTION_ESCALATE;
      const char *value = vd_rules_outcome_value(o, a, NULL);
      const char *w = json_is_string(want) ? json_string_value(want) : NULL;
      equal = (!value && !w) || (value && w && strcmp(value, w) == 0);
      text_or_null(w, &wanted);
      text_or_null(value, &got);
    } else if (strcmp(key, "errors") == 0) {
      equal = (json_int_t)o->error_count == json_integer_value(want);
      vd_buf_printf(&wanted, "%lld", (long long)json_integer_value(want));
      vd_buf_printf(&got, "%zu", o->error_count);
    }
    if (!equal)
      vd_buf_printf(diff, "%s%s: expected %s, got %s", diff->len ? "; " : "", key,
                    wanted.data ? wanted.data : "", got.data ? got.data : "");
    vd_buf_free(&got);
    vd_buf_free(&wanted);
  }
}

static void read_scores(const json_t *score, vd_rules_scores *s) {
  memset(s, 0, sizeof *s);
  s->p_treatment = json_number_value(json_object_get(score, "p_treatment"));
  s->p_control = json_number_value(json_object_get(score, "p_control"));
  s->uplift = json_number_value(json_object_get(score, "uplift"));
  s->margin = json_number_value(json_object_get(score, "margin"));
  s->confidence = json_number_value(json_object_get(score, "confidence"));
  json_t *value = json_object_get(score, "value");
  s->value = value ? json_number_value(value) : s->uplift;
  json_t *intent = json_object_get(score, "intent");
  s->intent = json_is_string(intent) ? json_string_value(intent) : NULL;
}

void vd_ruleset_run_test(const vd_ruleset *rs, size_t index, vd_ruleset_test_result *result) {
  const test_case *t = &rs->tests[index];
  result->name = t->name;
  result->passed = false;
  result->difference[0] = '\0';
  json_t *request = json_object();
  const char *sections[] = {"subject", "context", "candidate"};
  for (size_t i = 0; i < 3; i++) {
    json_t *v = json_object_get(t->input, sections[i]);
    if (v)
      json_object_set(request, sections[i], v);
    else
      json_object_set_new(request, sections[i], json_object());
  }
  vd_diags diags = {0};
  /* Tests are deterministic: `default: now` means the Unix epoch unless context.now is given. */
  json_t *normal = vd_schema_validate_at(rs->schema, request, 0, &diags);
  json_decref(request);
  if (!normal) {
    vd_buf b = {0};
    vd_buf_puts(&b, "the input does not match the schema: ");
    for (size_t i = 0; i < diags.count; i++) {
      char line[VD_ERROR_MESSAGE_MAX + VD_ERROR_WHERE_MAX];
      vd_error_format(&diags.items[i], line, sizeof line);
      vd_buf_printf(&b, "%s%s", i ? "; " : "", line);
    }
    snprintf(result->difference, sizeof result->difference, "%s", b.data);
    vd_buf_free(&b);
    vd_diags_free(&diags);
    return;
  }
  vd_rules_frame *frame = vd_rules_frame_new(rs);
  vd_rules_outcome *o = vd_rules_outcome_new(rs);
  vd_error e;
  vd_error_clear(&e);
  bool ok = frame && o && vd_rules_frame_bind_request(frame, normal, &e) &&
            vd_rules_frame_bind_candidate(frame, json_object_get(normal, "candidate"), &e) &&
            vd_ruleset_eval_stage(rs, frame, VD_STAGE_BEFORE_MODEL, o, &e);
  double base = rs->default_score;
  json_t *score = json_object_get(t->input, "score");
  if (ok && score && !vd_rules_outcome_settled(o)) {
    vd_rules_scores s;
    read_scores(score, &s);
    base = s.value;
    vd_rules_frame_bind_scores(frame, &s);
    ok = vd_ruleset_eval_stage(rs, frame, VD_STAGE_AFTER_MODEL, o, &e);
  }
  if (!ok) {
    snprintf(result->difference, sizeof result->difference, "evaluation failed: %.400s", e.message);
  } else {
    vd_buf diff = {0};
    bool eligible = o->decision != VD_DECISION_DENY;
    compare(o, base + o->adjust, eligible, t->expect, &diff);
    result->passed = diff.len == 0;
    if (diff.len) snprintf(result->difference, sizeof result->difference, "%s", diff.data);
    vd_buf_free(&diff);
  }
  vd_rules_outcome_free(o);
  vd_rules_frame_free(frame);
  json_decref(normal);
  vd_diags_free(&diags);
}
