/* cel_check.c: environments, types, and the type checker that turns a parsed tree into a
 * program: names resolve to slots (longest declared qualified name first), calls to builtins,
 * constant lists/maps/timestamps/durations are folded, constant regexes and zones prepared. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cel_internal.h"

/* ---- types ---- */

static const vd_cel_type t_dyn = {CEL_KIND_DYN, NULL, NULL};
static const vd_cel_type t_scalar[] = {
    [VD_CEL_NULL] = {VD_CEL_NULL, NULL, NULL},
    [VD_CEL_BOOL] = {VD_CEL_BOOL, NULL, NULL},
    [VD_CEL_INT] = {VD_CEL_INT, NULL, NULL},
    [VD_CEL_UINT] = {VD_CEL_UINT, NULL, NULL},
    [VD_CEL_DOUBLE] = {VD_CEL_DOUBLE, NULL, NULL},
    [VD_CEL_STRING] = {VD_CEL_STRING, NULL, NULL},
    [VD_CEL_BYTES] = {VD_CEL_BYTES, NULL, NULL},
    [VD_CEL_LIST] = {VD_CEL_LIST, &t_dyn, NULL},
    [VD_CEL_MAP] = {VD_CEL_MAP, &t_dyn, &t_dyn},
    [VD_CEL_TIMESTAMP] = {VD_CEL_TIMESTAMP, NULL, NULL},
    [VD_CEL_DURATION] = {VD_CEL_DURATION, NULL, NULL},
    [VD_CEL_TYPE] = {VD_CEL_TYPE, NULL, NULL},
};

const vd_cel_type *vd_cel_type_dyn(void) { return &t_dyn; }

const vd_cel_type *vd_cel_type_of_kind(vd_cel_kind kind) {
  if (kind < VD_CEL_NULL || kind > VD_CEL_TYPE) return NULL;
  return &t_scalar[kind];
}

static const vd_cel_type *T(vd_cel_kind kind) { return &t_scalar[kind]; }

bool cel_type_is_dyn(const vd_cel_type *t) { return t->kind == CEL_KIND_DYN; }

const vd_cel_type *cel_type_new(vd_cel_arena *arena, int kind, const vd_cel_type *key,
                                const vd_cel_type *elem) {
  vd_cel_type *t = vd_cel_arena_alloc(arena, sizeof *t);
  if (!t) return NULL;
  t->kind = kind;
  t->key = key;
  t->elem = elem;
  return t;
}

void vd_cel_type_format(const vd_cel_type *type, char *buf, size_t size) {
  if (!size) return;
  if (type->kind == CEL_KIND_DYN) {
    snprintf(buf, size, "dyn");
  } else if (type->kind == VD_CEL_LIST) {
    char e[128];
    vd_cel_type_format(type->elem, e, sizeof e);
    snprintf(buf, size, "list(%s)", e);
  } else if (type->kind == VD_CEL_MAP) {
    char k[128], v[128];
    vd_cel_type_format(type->key, k, sizeof k);
    vd_cel_type_format(type->elem, v, sizeof v);
    snprintf(buf, size, "map(%s, %s)", k, v);
  } else {
    snprintf(buf, size, "%s", vd_cel_kind_name((vd_cel_kind)type->kind));
  }
}

/* ---- environment ---- */

typedef struct cel_decl {
  const char *name;
  const vd_cel_type *type;
} cel_decl;

struct vd_cel_env {
  vd_cel_arena arena;
  cel_decl *decls;
  size_t count, capacity;
};

vd_cel_env *vd_cel_env_new(void) {
  vd_cel_env *env = calloc(1, sizeof *env);
  if (env) vd_cel_arena_init(&env->arena, NULL, 0);
  return env;
}

void vd_cel_env_free(vd_cel_env *env) {
  if (!env) return;
  free(env->decls);
  vd_cel_arena_free(&env->arena);
  free(env);
}

const vd_cel_type *vd_cel_type_list(vd_cel_env *env, const vd_cel_type *elem) {
  return cel_type_new(&env->arena, VD_CEL_LIST, NULL, elem);
}

const vd_cel_type *vd_cel_type_map(vd_cel_env *env, const vd_cel_type *key,
                                   const vd_cel_type *value) {
  return cel_type_new(&env->arena, VD_CEL_MAP, key, value);
}

static bool valid_qualified_name(const char *name) {
  bool start = true;
  for (const char *p = name; *p; p++) {
    char c = *p;
    bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    bool digit = c >= '0' && c <= '9';
    if (c == '.') {
      if (start) return false;
      start = true;
    } else if (letter || (digit && !start)) {
      start = false;
    } else {
      return false;
    }
  }
  return !start;
}

bool vd_cel_env_declare(vd_cel_env *env, const char *name, const vd_cel_type *type, size_t *slot,
                        vd_error *err) {
  if (!name || !valid_qualified_name(name))
    return vd_error_set(err, "'%s' is not a valid variable name (letters, digits, _ and dots)",
                        name ? name : "(null)");
  if (!type) return vd_error_set(err, "variable '%s' has no type", name);
  size_t existing;
  if (vd_cel_env_lookup(env, name, &existing))
    return vd_error_set(err, "variable '%s' is declared twice", name);
  if (env->count == env->capacity) {
    size_t cap = env->capacity ? env->capacity * 2 : 16;
    cel_decl *d = realloc(env->decls, sizeof *d * cap);
    if (!d) return vd_error_set(err, "out of memory");
    env->decls = d;
    env->capacity = cap;
  }
  const char *copy = cel_arena_strndup(&env->arena, name, strlen(name));
  if (!copy) return vd_error_set(err, "out of memory");
  env->decls[env->count] = (cel_decl){copy, type};
  if (slot) *slot = env->count;
  env->count++;
  return true;
}

size_t vd_cel_env_slot_count(const vd_cel_env *env) { return env->count; }
const char *vd_cel_env_slot_name(const vd_cel_env *env, size_t slot) {
  return slot < env->count ? env->decls[slot].name : NULL;
}
const vd_cel_type *vd_cel_env_slot_type(const vd_cel_env *env, size_t slot) {
  return slot < env->count ? env->decls[slot].type : NULL;
}

bool vd_cel_env_lookup(const vd_cel_env *env, const char *name, size_t *slot) {
  for (size_t i = 0; i < env->count; i++)
    if (strcmp(env->decls[i].name, name) == 0) {
      if (slot) *slot = i;
      return true;
    }
  return false;
}

/* ---- checker ---- */

typedef struct checker {
  vd_cel_program *prog;
  const vd_cel_env *env;
  cel_diag *diag;
  struct {
    const char *name;
    const vd_cel_type *type;
  } locals[CEL_MAX_LOCALS];
  uint32_t nlocals;
  size_t ref_capacity;
} checker;

static const vd_cel_type *fail(checker *c, const cel_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static const vd_cel_type *fail(checker *c, const cel_node *n, const char *fmt, ...) {
  char buf[VD_ERROR_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  cel_diag_set(c->diag, n->offset, "%s", buf);
  return NULL;
}

/* Where a subexpression starts (its leftmost token), for errors about an operand. */
static uint32_t start_of(const cel_node *n) {
  uint32_t offset = n->offset;
  for (; n; n = n->a) {
    if (n->offset < offset) offset = n->offset;
    if (n->op != N_SELECT && n->op != N_INDEX && n->op != N_CALL && n->op != N_BINARY &&
        n->op != N_AND && n->op != N_OR && n->op != N_COND && n->op != N_COMPREHENSION)
      break;
  }
  return offset;
}

static const vd_cel_type *fail_operand(checker *c, const cel_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static const vd_cel_type *fail_operand(checker *c, const cel_node *n, const char *fmt, ...) {
  char buf[VD_ERROR_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  cel_diag_set(c->diag, start_of(n), "%s", buf);
  return NULL;
}

static const char *tname(const vd_cel_type *t, char *buf, size_t size) {
  vd_cel_type_format(t, buf, size);
  return buf;
}

static bool is_dyn(const vd_cel_type *t) { return t->kind == CEL_KIND_DYN; }
static bool is_num(const vd_cel_type *t) {
  return t->kind == VD_CEL_INT || t->kind == VD_CEL_UINT || t->kind == VD_CEL_DOUBLE;
}

/* Could values of these types ever be equal (CEL's heterogeneous equality)? */
static bool compatible(const vd_cel_type *a, const vd_cel_type *b) {
  if (is_dyn(a) || is_dyn(b) || a->kind == VD_CEL_NULL || b->kind == VD_CEL_NULL) return true;
  if (is_num(a) && is_num(b)) return true;
  if (a->kind != b->kind) return false;
  if (a->kind == VD_CEL_LIST) return compatible(a->elem, b->elem);
  if (a->kind == VD_CEL_MAP) return compatible(a->key, b->key) && compatible(a->elem, b->elem);
  return true;
}

static bool same_type(const vd_cel_type *a, const vd_cel_type *b) {
  if (a->kind != b->kind) return false;
  if (a->kind == VD_CEL_LIST) return same_type(a->elem, b->elem);
  if (a->kind == VD_CEL_MAP) return same_type(a->key, b->key) && same_type(a->elem, b->elem);
  return true;
}

/* The common type of two branches/elements: the type itself, or dyn. */
static const vd_cel_type *join(const vd_cel_type *a, const vd_cel_type *b) {
  if (!a) return b;
  return same_type(a, b) ? a : &t_dyn;
}

static bool add_ref(checker *c, size_t slot, uint32_t *ref) {
  vd_cel_program *p = c->prog;
  for (size_t i = 0; i < p->ref_count; i++)
    if (p->refs[i] == slot) {
      *ref = (uint32_t)i;
      return true;
    }
  if (p->ref_count == c->ref_capacity) {
    size_t cap = c->ref_capacity ? c->ref_capacity * 2 : 8;
    size_t *refs = vd_cel_arena_alloc(&p->arena, sizeof *refs * cap);
    if (!refs) return false;
    if (p->ref_count) memcpy(refs, p->refs, sizeof *refs * p->ref_count);
    p->refs = refs;
    c->ref_capacity = cap;
  }
  *ref = (uint32_t)p->ref_count;
  p->refs[p->ref_count++] = slot;
  return true;
}

static long find_local(const checker *c, const char *name) {
  for (long i = (long)c->nlocals - 1; i >= 0; i--)
    if (strcmp(c->locals[i].name, name) == 0) return i;
  return -1;
}

/* The dotted name of an IDENT/SELECT chain ("a.b.c"), or false when the chain has another
 * root or starts at a comprehension variable. */
static bool chain_name(const checker *c, const cel_node *n, char *buf, size_t size) {
  if (n->op == N_IDENT) {
    if (!(n->flags & CEL_ABSOLUTE) && find_local(c, n->name) >= 0) return false;
    return (size_t)snprintf(buf, size, "%s", n->name) < size;
  }
  if (n->op != N_SELECT || !chain_name(c, n->a, buf, size)) return false;
  size_t len = strlen(buf);
  return (size_t)snprintf(buf + len, size - len, ".%s", n->name) < size - len;
}

static const struct {
  const char *name;
  vd_cel_kind kind;
} type_names[] = {
    {"bool", VD_CEL_BOOL},
    {"int", VD_CEL_INT},
    {"uint", VD_CEL_UINT},
    {"double", VD_CEL_DOUBLE},
    {"string", VD_CEL_STRING},
    {"bytes", VD_CEL_BYTES},
    {"list", VD_CEL_LIST},
    {"map", VD_CEL_MAP},
    {"null_type", VD_CEL_NULL},
    {"type", VD_CEL_TYPE},
    {"google.protobuf.Timestamp", VD_CEL_TIMESTAMP},
    {"google.protobuf.Duration", VD_CEL_DURATION},
};

/* Resolves a dotted name to a declared slot or a type denotation, rewriting n in place. */
static const vd_cel_type *resolve_name(checker *c, cel_node *n, const char *name) {
  size_t slot;
  if (vd_cel_env_lookup(c->env, name, &slot)) {
    uint32_t ref;
    if (!add_ref(c, slot, &ref)) return fail(c, n, "out of memory");
    n->offset = start_of(n);
    n->op = N_SLOT;
    n->name = vd_cel_env_slot_name(c->env, slot); /* the full name, for error messages */
    n->slot = (uint32_t)slot;
    n->ref = ref;
    n->a = NULL;
    return vd_cel_env_slot_type(c->env, slot);
  }
  for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
    if (strcmp(type_names[i].name, name) == 0) {
      n->offset = start_of(n);
      n->op = N_LIT;
      n->a = NULL;
      n->lit = (vd_cel_value){.kind = VD_CEL_TYPE, .v.type_kind = type_names[i].kind};
      return T(VD_CEL_TYPE);
    }
  return NULL;
}

static const vd_cel_type *check(checker *c, cel_node *n);

static const vd_cel_type *check_select(checker *c, cel_node *n) {
  char name[512];
  if (chain_name(c, n, name, sizeof name)) {
    const vd_cel_type *t = resolve_name(c, n, name);
    if (t || c->diag->set) return t;
  }
  const vd_cel_type *operand = check(c, n->a);
  if (!operand) return NULL;
  char b[128];
  if (is_dyn(operand)) return &t_dyn;
  if (operand->kind == VD_CEL_MAP) {
    if (!is_dyn(operand->key) && operand->key->kind != VD_CEL_STRING)
      return fail(c, n, "cannot select field '%s' from %s (its keys are not strings)", n->name,
                  tname(operand, b, sizeof b));
    return operand->elem;
  }
  return fail(c, n, "type %s has no field '%s'", tname(operand, b, sizeof b), n->name);
}

static const vd_cel_type *check_ident(checker *c, cel_node *n) {
  if (!(n->flags & CEL_ABSOLUTE)) {
    long local = find_local(c, n->name);
    if (local >= 0) {
      n->op = N_LOCAL;
      n->local = (uint32_t)local;
      return c->locals[local].type;
    }
  }
  const vd_cel_type *t = resolve_name(c, n, n->name);
  if (t || c->diag->set) return t;
  return fail(c, n, "undeclared reference to '%s'", n->name);
}

/* Folds a list or map literal whose elements are all constants into one constant. */
static void fold_aggregate(checker *c, cel_node *n) {
  for (uint32_t i = 0; i < n->nargs; i++)
    if (n->args[i]->op != N_LIT) return;
  vd_cel_arena *a = &c->prog->arena;
  if (n->op == N_LIST) {
    vd_cel_list *l = vd_cel_arena_alloc(a, sizeof *l);
    vd_cel_value *items = vd_cel_arena_alloc(a, sizeof *items * (n->nargs ? n->nargs : 1));
    if (!l || !items) return;
    for (uint32_t i = 0; i < n->nargs; i++) items[i] = n->args[i]->lit;
    l->count = n->nargs;
    l->items = items;
    n->lit = vd_cel_list_value(l);
  } else {
    uint32_t count = n->nargs / 2;
    vd_cel_map *m = vd_cel_arena_alloc(a, sizeof *m);
    vd_cel_value *kv = vd_cel_arena_alloc(a, sizeof *kv * 2 * (count ? count : 1));
    if (!m || !kv) return;
    for (uint32_t i = 0; i < count; i++) {
      kv[i] = n->args[2 * i]->lit;
      kv[count + i] = n->args[2 * i + 1]->lit;
      if (!cel_is_map_key_kind(kv[i].kind)) return; /* left for the evaluator's error */
      for (uint32_t j = 0; j < i; j++)
        if (vd_cel_equal(&kv[i], &kv[j])) return;
    }
    m->count = count;
    m->keys = kv;
    m->values = kv + count;
    n->lit = vd_cel_map_value(m);
  }
  n->op = N_LIT;
}

static const vd_cel_type *check_aggregate(checker *c, cel_node *n) {
  bool is_map = n->op == N_MAP;
  const vd_cel_type *key = NULL, *elem = NULL;
  for (uint32_t i = 0; i < n->nargs; i++) {
    const vd_cel_type *t = check(c, n->args[i]);
    if (!t) return NULL;
    if (is_map && i % 2 == 0) {
      char b[64];
      if (!is_dyn(t) && !(t->kind == VD_CEL_BOOL || t->kind == VD_CEL_INT ||
                          t->kind == VD_CEL_UINT || t->kind == VD_CEL_STRING))
        return fail_operand(c, n->args[i], "map keys must be bool, int, uint or string, not %s",
                            tname(t, b, sizeof b));
      key = join(key, t);
    } else {
      elem = join(elem, t);
    }
  }
  fold_aggregate(c, n);
  const vd_cel_type *t = cel_type_new(&c->prog->arena, is_map ? VD_CEL_MAP : VD_CEL_LIST,
                                      is_map ? (key ? key : &t_dyn) : NULL, elem ? elem : &t_dyn);
  return t ? t : fail(c, n, "out of memory");
}

static const char *binop_name(cel_binop op) {
  static const char *const names[] = {
      "+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "in"};
  return names[op];
}

static const vd_cel_type *check_binary(checker *c, cel_node *n) {
  const vd_cel_type *a = check(c, n->a);
  if (!a) return NULL;
  const vd_cel_type *b = check(c, n->b);
  if (!b) return NULL;
  cel_binop op = (cel_binop)n->sub;
  int ka = a->kind, kb = b->kind;
  switch (op) {
    case B_EQ:
    case B_NE:
      if (compatible(a, b)) return T(VD_CEL_BOOL);
      break;
    case B_LT:
    case B_LE:
    case B_GT:
    case B_GE: {
      bool orderable_a = is_dyn(a) || is_num(a) || ka == VD_CEL_BOOL || ka == VD_CEL_STRING ||
                         ka == VD_CEL_BYTES || ka == VD_CEL_TIMESTAMP || ka == VD_CEL_DURATION;
      bool orderable_b = is_dyn(b) || is_num(b) || kb == VD_CEL_BOOL || kb == VD_CEL_STRING ||
                         kb == VD_CEL_BYTES || kb == VD_CEL_TIMESTAMP || kb == VD_CEL_DURATION;
      if (orderable_a && orderable_b &&
          (is_dyn(a) || is_dyn(b) || ka == kb || (is_num(a) && is_num(b))))
        return T(VD_CEL_BOOL);
      break;
    }
    case B_IN:
      if (is_dyn(b)) return T(VD_CEL_BOOL);
      if (kb == VD_CEL_LIST && compatible(a, b->elem)) return T(VD_CEL_BOOL);
      if (kb == VD_CEL_MAP && compatible(a, b->key)) return T(VD_CEL_BOOL);
      break;
    default: {
      if (is_dyn(a) || is_dyn(b)) {
        const vd_cel_type *other = is_dyn(a) ? b : a;
        if (is_num(other) || other->kind == VD_CEL_STRING || other->kind == VD_CEL_BYTES)
          return op == B_MOD && other->kind == VD_CEL_DOUBLE ? NULL : other;
        if (other->kind == VD_CEL_LIST && op == B_ADD) return T(VD_CEL_LIST);
        return &t_dyn;
      }
      if (ka == kb &&
          (ka == VD_CEL_INT || ka == VD_CEL_UINT || (ka == VD_CEL_DOUBLE && op != B_MOD)))
        return a;
      if (op == B_ADD) {
        if (ka == kb && (ka == VD_CEL_STRING || ka == VD_CEL_BYTES || ka == VD_CEL_DURATION))
          return a;
        if (ka == VD_CEL_LIST && kb == VD_CEL_LIST) {
          const vd_cel_type *e = join(a->elem, b->elem);
          return e == a->elem ? a : T(VD_CEL_LIST);
        }
        if ((ka == VD_CEL_TIMESTAMP && kb == VD_CEL_DURATION) ||
            (ka == VD_CEL_DURATION && kb == VD_CEL_TIMESTAMP))
          return T(VD_CEL_TIMESTAMP);
      }
      if (op == B_SUB) {
        if (ka == VD_CEL_TIMESTAMP && kb == VD_CEL_TIMESTAMP) return T(VD_CEL_DURATION);
        if (ka == VD_CEL_TIMESTAMP && kb == VD_CEL_DURATION) return T(VD_CEL_TIMESTAMP);
        if (ka == VD_CEL_DURATION && kb == VD_CEL_DURATION) return T(VD_CEL_DURATION);
      }
      break;
    }
  }
  char ba[128], bb[128];
  const char *hint = (is_num(a) && is_num(b)) ? " (CEL does not mix number types in arithmetic: "
                                                "convert one side with int(), uint() or double())"
                                              : "";
  return fail(c, n, "no operator '%s' for (%s, %s)%s", binop_name(op), tname(a, ba, sizeof ba),
              tname(b, bb, sizeof bb), hint);
}

static bool kind_in(int kind, const vd_cel_kind *kinds, size_t n) {
  if (kind == CEL_KIND_DYN) return true;
  for (size_t i = 0; i < n; i++)
    if ((int)kinds[i] == kind) return true;
  return false;
}

static const struct {
  const char *name;
  cel_fn fn;
} functions[] = {
    {"size", F_SIZE},
    {"contains", F_CONTAINS},
    {"startsWith", F_STARTS_WITH},
    {"endsWith", F_ENDS_WITH},
    {"matches", F_MATCHES},
    {"int", F_INT},
    {"uint", F_UINT},
    {"double", F_DOUBLE},
    {"string", F_STRING},
    {"bool", F_BOOL},
    {"bytes", F_BYTES},
    {"type", F_TYPE},
    {"dyn", F_DYN},
    {"timestamp", F_TIMESTAMP},
    {"duration", F_DURATION},
    {"getFullYear", F_GET_FULL_YEAR},
    {"getMonth", F_GET_MONTH},
    {"getDayOfYear", F_GET_DAY_OF_YEAR},
    {"getDayOfMonth", F_GET_DAY_OF_MONTH},
    {"getDate", F_GET_DATE},
    {"getDayOfWeek", F_GET_DAY_OF_WEEK},
    {"getHours", F_GET_HOURS},
    {"getMinutes", F_GET_MINUTES},
    {"getSeconds", F_GET_SECONDS},
    {"getMilliseconds", F_GET_MILLISECONDS},
};

static bool add_regex(checker *c, pcre2_code *re) {
  vd_cel_program *p = c->prog;
  if (p->regex_count == p->regex_capacity) {
    size_t cap = p->regex_capacity ? p->regex_capacity * 2 : 4;
    void **r = realloc(p->regexes, sizeof *r * cap);
    if (!r) return false;
    p->regexes = r;
    p->regex_capacity = cap;
  }
  p->regexes[p->regex_count++] = re;
  return true;
}

/* Compiles a constant pattern once, at compile time, so a bad pattern is a load error. */
static bool prepare_regex(checker *c, cel_node *call, const cel_node *pattern) {
  if (pattern->op != N_LIT || pattern->lit.kind != VD_CEL_STRING) return true;
  int code;
  PCRE2_SIZE where;
  pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern->lit.v.str.data, pattern->lit.v.str.len,
                                 CEL_REGEX_OPTIONS, &code, &where, NULL);
  if (!re) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(code, msg, sizeof msg);
    cel_diag_set(c->diag, pattern->offset, "invalid regular expression at character %zu: %s",
                 (size_t)where, (const char *)msg);
    return false;
  }
  if (!add_regex(c, re)) {
    pcre2_code_free(re);
    cel_diag_set(c->diag, call->offset, "out of memory");
    return false;
  }
  /* Machine code for the pattern: pcre2_match then runs it instead of the interpreter (same
   * results; the match limit still applies). Where JIT is unavailable (no executable memory,
   * an unsupported CPU) this fails and matching stays interpreted. */
  (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
  call->extra = re;
  return true;
}

static const vd_cel_type *check_call(checker *c, cel_node *n) {
  cel_fn fn = F_UNKNOWN;
  for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++)
    if (strcmp(functions[i].name, n->name) == 0) fn = functions[i].fn;
  if (fn == F_UNKNOWN) return fail(c, n, "unknown function '%s'", n->name);
  n->sub = (uint8_t)fn;
  const vd_cel_type *target = NULL, *args[3] = {NULL, NULL, NULL};
  if (n->a && !(target = check(c, n->a))) return NULL;
  if (n->nargs > 2) return fail(c, n, "too many arguments to '%s'", n->name);
  for (uint32_t i = 0; i < n->nargs; i++)
    if (!(args[i] = check(c, n->args[i]))) return NULL;
  char b[128];
  /* Global forms that CEL also allows as methods: size(x), matches(s, re). */
  if ((fn == F_SIZE || fn == F_MATCHES) && !n->a && n->nargs >= 1) {
    n->a = n->args[0];
    target = args[0];
    n->args++;
    n->nargs--;
    args[0] = args[1];
  }
  switch (fn) {
    case F_SIZE: {
      static const vd_cel_kind ok[] = {VD_CEL_STRING, VD_CEL_BYTES, VD_CEL_LIST, VD_CEL_MAP};
      if (!target || n->nargs) return fail(c, n, "size() takes one argument");
      if (!kind_in(target->kind, ok, 4))
        return fail(c, n, "size() is not defined for %s", tname(target, b, sizeof b));
      return T(VD_CEL_INT);
    }
    case F_CONTAINS:
    case F_STARTS_WITH:
    case F_ENDS_WITH:
    case F_MATCHES: {
      static const vd_cel_kind ok[] = {VD_CEL_STRING};
      if (!target || n->nargs != 1)
        return fail(c, n, "'%s' is called as s.%s(text)", n->name, n->name);
      if (!kind_in(target->kind, ok, 1) || !kind_in(args[0]->kind, ok, 1))
        return fail(c, n, "'%s' needs strings, not %s", n->name,
                    tname(kind_in(target->kind, ok, 1) ? args[0] : target, b, sizeof b));
      if (fn == F_MATCHES && !prepare_regex(c, n, n->args[0])) return NULL;
      return T(VD_CEL_BOOL);
    }
    default:
      break;
  }
  if (fn >= F_GET_FULL_YEAR) {
    if (!target) return fail(c, n, "'%s' is called as t.%s()", n->name, n->name);
    bool duration_ok =
        fn == F_GET_HOURS || fn == F_GET_MINUTES || fn == F_GET_SECONDS || fn == F_GET_MILLISECONDS;
    if (target->kind == VD_CEL_DURATION && !duration_ok)
      return fail(c, n, "'%s' is not defined for durations", n->name);
    if (target->kind != VD_CEL_TIMESTAMP && target->kind != VD_CEL_DURATION && !is_dyn(target))
      return fail(c, n, "'%s' needs a timestamp or duration, not %s", n->name,
                  tname(target, b, sizeof b));
    if (n->nargs > 1 || (n->nargs == 1 && target->kind == VD_CEL_DURATION))
      return fail(c, n, "'%s' takes at most a time-zone argument", n->name);
    if (n->nargs == 1) {
      if (args[0]->kind != VD_CEL_STRING && !is_dyn(args[0]))
        return fail_operand(c, n->args[0], "a time zone is a string, not %s",
                            tname(args[0], b, sizeof b));
      const cel_node *tz = n->args[0];
      if (tz->op == N_LIT && tz->lit.kind == VD_CEL_STRING) {
        const char *why = NULL;
        n->extra = cel_zone_load(tz->lit.v.str.data, tz->lit.v.str.len, &c->prog->arena, &why);
        if (!n->extra) return fail_operand(c, tz, "time zone: %s", why);
      }
    }
    return T(VD_CEL_INT);
  }
  if (n->a) return fail(c, n, "'%s' is a function, not a method: call %s(x)", n->name, n->name);
  if (n->nargs != 1) return fail(c, n, "'%s' takes one argument", n->name);
  const vd_cel_type *arg = args[0];
  static const vd_cel_kind to_int[] = {VD_CEL_INT, VD_CEL_UINT, VD_CEL_DOUBLE, VD_CEL_STRING,
                                       VD_CEL_TIMESTAMP};
  static const vd_cel_kind to_string[] = {VD_CEL_INT,       VD_CEL_UINT,    VD_CEL_DOUBLE,
                                          VD_CEL_STRING,    VD_CEL_BYTES,   VD_CEL_BOOL,
                                          VD_CEL_TIMESTAMP, VD_CEL_DURATION};
  static const vd_cel_kind to_bool[] = {VD_CEL_BOOL, VD_CEL_STRING};
  static const vd_cel_kind to_bytes[] = {VD_CEL_BYTES, VD_CEL_STRING};
  static const vd_cel_kind to_ts[] = {VD_CEL_TIMESTAMP, VD_CEL_STRING, VD_CEL_INT};
  static const vd_cel_kind to_dur[] = {VD_CEL_DURATION, VD_CEL_STRING};
  bool ok = true;
  const vd_cel_type *result = NULL;
  switch (fn) {
    case F_INT:
      ok = kind_in(arg->kind, to_int, 5), result = T(VD_CEL_INT);
      break;
    case F_UINT:
      ok = kind_in(arg->kind, to_int, 4), result = T(VD_CEL_UINT);
      break;
    case F_DOUBLE:
      ok = kind_in(arg->kind, to_int, 4), result = T(VD_CEL_DOUBLE);
      break;
    case F_STRING:
      ok = kind_in(arg->kind, to_string, 8), result = T(VD_CEL_STRING);
      break;
    case F_BOOL:
      ok = kind_in(arg->kind, to_bool, 2), result = T(VD_CEL_BOOL);
      break;
    case F_BYTES:
      ok = kind_in(arg->kind, to_bytes, 2), result = T(VD_CEL_BYTES);
      break;
    case F_TYPE:
      result = T(VD_CEL_TYPE);
      break;
    case F_DYN:
      result = &t_dyn;
      break;
    case F_TIMESTAMP:
      ok = kind_in(arg->kind, to_ts, 3), result = T(VD_CEL_TIMESTAMP);
      break;
    case F_DURATION:
      ok = kind_in(arg->kind, to_dur, 2), result = T(VD_CEL_DURATION);
      break;
    default:
      break;
  }
  if (!ok) return fail(c, n, "%s() cannot convert %s", n->name, tname(arg, b, sizeof b));
  /* Constant timestamps and durations are parsed now: a typo is a load error. */
  const cel_node *a0 = n->args[0];
  if ((fn == F_TIMESTAMP || fn == F_DURATION) && a0->op == N_LIT && a0->lit.kind == VD_CEL_STRING) {
    vd_error err;
    vd_cel_value v;
    bool parsed = fn == F_TIMESTAMP
                      ? vd_cel_timestamp_parse(a0->lit.v.str.data, a0->lit.v.str.len, &v, &err)
                      : vd_cel_duration_parse(a0->lit.v.str.data, a0->lit.v.str.len, &v, &err);
    if (!parsed) return fail_operand(c, a0, "%s", err.message);
    n->op = N_LIT;
    n->lit = v;
  }
  return result;
}

static const vd_cel_type *check_comprehension(checker *c, cel_node *n) {
  const vd_cel_type *range = check(c, n->a);
  if (!range) return NULL;
  char b[128];
  const vd_cel_type *var;
  if (range->kind == VD_CEL_LIST)
    var = range->elem;
  else if (range->kind == VD_CEL_MAP)
    var = range->key;
  else if (is_dyn(range))
    var = &t_dyn;
  else
    return fail(c, n, "cannot iterate over %s (a list or map is needed)",
                tname(range, b, sizeof b));
  if (c->nlocals >= CEL_MAX_LOCALS)
    return fail(c, n, "comprehensions are nested more than %d deep", CEL_MAX_LOCALS);
  n->local = c->nlocals;
  c->locals[c->nlocals].name = n->name;
  c->locals[c->nlocals].type = var;
  c->nlocals++;
  const vd_cel_type *body = check(c, n->b), *transform = NULL;
  if (body && n->c) transform = check(c, n->c);
  c->nlocals--;
  if (!body || (n->c && !transform)) return NULL;
  cel_macro m = (cel_macro)n->sub;
  bool body_is_predicate = m != M_MAP || n->c;
  if (body_is_predicate && body->kind != VD_CEL_BOOL && !is_dyn(body))
    return fail_operand(c, n->b, "the condition must be bool, not %s", tname(body, b, sizeof b));
  switch (m) {
    case M_MAP: {
      const vd_cel_type *t =
          cel_type_new(&c->prog->arena, VD_CEL_LIST, NULL, n->c ? transform : body);
      return t ? t : fail(c, n, "out of memory");
    }
    case M_FILTER: {
      const vd_cel_type *t = cel_type_new(&c->prog->arena, VD_CEL_LIST, NULL, var);
      return t ? t : fail(c, n, "out of memory");
    }
    default:
      return T(VD_CEL_BOOL);
  }
}

static const vd_cel_type *check_node(checker *c, cel_node *n) {
  char b[128], b2[128];
  switch ((cel_op)n->op) {
    case N_LIT:
      if (n->lit.kind == VD_CEL_LIST) return T(VD_CEL_LIST);
      if (n->lit.kind == VD_CEL_MAP) return T(VD_CEL_MAP);
      return T(n->lit.kind);
    case N_IDENT:
      return check_ident(c, n);
    case N_SELECT:
      return check_select(c, n);
    case N_INDEX: {
      const vd_cel_type *a = check(c, n->a);
      const vd_cel_type *i = a ? check(c, n->b) : NULL;
      if (!i) return NULL;
      if (is_dyn(a)) return &t_dyn;
      if (a->kind == VD_CEL_LIST) {
        if (i->kind != VD_CEL_INT && i->kind != VD_CEL_UINT && !is_dyn(i))
          return fail_operand(c, n->b, "a list index must be int, not %s", tname(i, b, sizeof b));
        return a->elem;
      }
      if (a->kind == VD_CEL_MAP) {
        if (!compatible(i, a->key))
          return fail_operand(c, n->b, "key of type %s cannot index %s", tname(i, b, sizeof b),
                              tname(a, b2, sizeof b2));
        return a->elem;
      }
      return fail(c, n, "%s cannot be indexed", tname(a, b, sizeof b));
    }
    case N_CALL:
      return check_call(c, n);
    case N_LIST:
    case N_MAP:
      return check_aggregate(c, n);
    case N_COND: {
      const vd_cel_type *cond = check(c, n->a);
      if (!cond) return NULL;
      if (cond->kind != VD_CEL_BOOL && !is_dyn(cond))
        return fail_operand(c, n->a, "the condition of '? :' must be bool, not %s",
                            tname(cond, b, sizeof b));
      const vd_cel_type *x = check(c, n->b);
      const vd_cel_type *y = x ? check(c, n->c) : NULL;
      return y ? join(x, y) : NULL;
    }
    case N_AND:
    case N_OR: {
      const vd_cel_type *x = check(c, n->a);
      const vd_cel_type *y = x ? check(c, n->b) : NULL;
      if (!y) return NULL;
      const char *op = n->op == N_AND ? "&&" : "||";
      if (x->kind != VD_CEL_BOOL && !is_dyn(x))
        return fail_operand(c, n->a, "'%s' needs bool operands, not %s", op, tname(x, b, sizeof b));
      if (y->kind != VD_CEL_BOOL && !is_dyn(y))
        return fail_operand(c, n->b, "'%s' needs bool operands, not %s", op, tname(y, b, sizeof b));
      return T(VD_CEL_BOOL);
    }
    case N_NOT: {
      const vd_cel_type *x = check(c, n->a);
      if (!x) return NULL;
      if (x->kind != VD_CEL_BOOL && !is_dyn(x))
        return fail(c, n, "'!' needs a bool, not %s", tname(x, b, sizeof b));
      return T(VD_CEL_BOOL);
    }
    case N_NEG: {
      const vd_cel_type *x = check(c, n->a);
      if (!x) return NULL;
      if (x->kind != VD_CEL_INT && x->kind != VD_CEL_DOUBLE && !is_dyn(x) &&
          x->kind != VD_CEL_DURATION)
        return fail(c, n, "unary '-' is not defined for %s", tname(x, b, sizeof b));
      return x;
    }
    case N_BINARY:
      return check_binary(c, n);
    case N_HAS: {
      cel_node *sel = n->a;
      char name[512];
      if (chain_name(c, sel, name, sizeof name)) {
        size_t slot;
        if (vd_cel_env_lookup(c->env, name, &slot)) {
          resolve_name(c, sel, name); /* has(declared.field): is the slot set? */
          return T(VD_CEL_BOOL);
        }
      }
      const vd_cel_type *operand = check(c, sel->a);
      if (!operand) return NULL;
      if (operand->kind != VD_CEL_MAP && !is_dyn(operand))
        return fail(c, sel, "has() needs a map field, and %s has no fields",
                    tname(operand, b, sizeof b));
      return T(VD_CEL_BOOL);
    }
    case N_COMPREHENSION:
      return check_comprehension(c, n);
    case N_SLOT:
    case N_LOCAL:
      break;
  }
  return fail(c, n, "internal error: unexpected node");
}

static const vd_cel_type *check(checker *c, cel_node *n) {
  const vd_cel_type *t = check_node(c, n);
  n->type = t;
  return t;
}

bool cel_check(vd_cel_program *program, const vd_cel_env *env, cel_diag *diag) {
  checker c = {.prog = program, .env = env, .diag = diag};
  if (!check(&c, program->root)) {
    if (!diag->set) cel_diag_set(diag, program->root->offset, "type error");
    return false;
  }
  return true;
}

/* ---- compile ---- */

static void line_column(const char *src, size_t offset, int *line, int *column) {
  *line = 1;
  *column = 1;
  for (size_t i = 0; i < offset; i++) {
    if (src[i] == '\n') {
      (*line)++;
      *column = 1;
    } else if (((unsigned char)src[i] & 0xC0) != 0x80) {
      (*column)++;
    }
  }
}

vd_cel_program *vd_cel_compile(const vd_cel_env *env, const char *source, size_t len,
                               size_t *error_offset, vd_error *err) {
  vd_cel_program *p = calloc(1, sizeof *p);
  if (!p) {
    vd_error_set(err, "out of memory");
    return NULL;
  }
  vd_cel_arena_init(&p->arena, NULL, 0);
  cel_diag diag = {.set = false};
  char *copy = cel_arena_strndup(&p->arena, source, len);
  if (!copy) {
    vd_cel_program_free(p);
    vd_error_set(err, "out of memory");
    return NULL;
  }
  p->source = copy;
  p->source_len = len;
  p->slot_count = env->count;
  p->match_context = pcre2_match_context_create(NULL);
  if (p->match_context) {
    pcre2_set_match_limit(p->match_context, CEL_REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(p->match_context, CEL_REGEX_DEPTH_LIMIT);
    pcre2_set_heap_limit(p->match_context, CEL_REGEX_HEAP_LIMIT_KB);
  }
  p->root = p->match_context ? cel_parse(copy, len, &p->arena, &diag) : NULL;
  if (!p->match_context) cel_diag_set(&diag, 0, "out of memory");
  if (p->root && cel_check(p, env, &diag)) return p;
  size_t offset = diag.offset <= len ? diag.offset : len;
  if (error_offset) *error_offset = offset;
  int line, column;
  line_column(copy, offset, &line, &column);
  if (err) {
    vd_error_set(err, "%s", diag.message);
    err->line = line;
    err->column = column;
  }
  vd_cel_program_free(p);
  return NULL;
}

void vd_cel_program_free(vd_cel_program *program) {
  if (!program) return;
  for (size_t i = 0; i < program->regex_count; i++) pcre2_code_free(program->regexes[i]);
  free(program->regexes);
  pcre2_match_context_free(program->match_context);
  vd_cel_arena_free(&program->arena);
  free(program);
}

const vd_cel_type *vd_cel_program_type(const vd_cel_program *program) {
  return program->root->type;
}
size_t vd_cel_program_ref_count(const vd_cel_program *program) { return program->ref_count; }
const size_t *vd_cel_program_refs(const vd_cel_program *program) { return program->refs; }
