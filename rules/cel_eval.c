/* cel_eval.c: the evaluator — a walk over the checked tree with CEL's runtime semantics
 * (errors as values, commutative &&/||, overflow checks, heterogeneous equality). All state is on
 * the stack or in the caller's arena, so one program serves many threads at once. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cel_internal.h"

#include "vd_utf8.h"

typedef struct ev {
  const vd_cel_program *prog;
  const vd_cel_value *slots;
  size_t slot_count;
  vd_cel_arena *arena;
  size_t *reads, nreads;
  uint64_t seen;       /* refs below 64 already recorded */
  uint64_t iterations; /* comprehension steps so far (bounded: CEL_MAX_ITERATIONS) */
  vd_cel_value locals[CEL_MAX_LOCALS];
} ev;

static vd_cel_value eval(ev *e, const cel_node *n);

#define ERR(n, msg) cel_error(msg, (n)->offset)
/* Kept out of line so that the recursive dispatcher (eval_node) stays small: its stack frame is
 * paid on every node of every evaluation. */
#define COLD __attribute__((noinline))

COLD static vd_cel_value no_overload(ev *e, const cel_node *n, const char *op,
                                     const vd_cel_value *a, const vd_cel_value *b) {
  if (b)
    return cel_errorf(e->arena, n->offset, "no such overload: %s %s %s", vd_cel_kind_name(a->kind),
                      op, vd_cel_kind_name(b->kind));
  return cel_errorf(e->arena, n->offset, "no such overload: %s(%s)", op, vd_cel_kind_name(a->kind));
}

static void record_read(ev *e, const cel_node *n) {
  if (!e->reads) return;
  if (n->ref < 64) {
    uint64_t bit = (uint64_t)1 << n->ref;
    if (e->seen & bit) return;
    e->seen |= bit;
  } else {
    for (size_t i = 0; i < e->nreads; i++)
      if (e->reads[i] == n->slot) return;
  }
  e->reads[e->nreads++] = n->slot;
}

static vd_cel_value read_slot(ev *e, const cel_node *n) {
  if (n->slot >= e->slot_count) return ERR(n, "variable has no value bound (activation too short)");
  record_read(e, n);
  vd_cel_value v = e->slots[n->slot];
  if (v.kind == VD_CEL_UNSET) return cel_errorf(e->arena, n->offset, "no value for '%s'", n->name);
  return v;
}

/* ---- arithmetic ---- */

static vd_cel_value time_value(vd_cel_kind kind, __int128 nanos) {
  vd_cel_value v = {.kind = kind};
  int64_t s = (int64_t)(nanos / 1000000000);
  int32_t ns = (int32_t)(nanos % 1000000000);
  if (kind == VD_CEL_TIMESTAMP && ns < 0) ns += 1000000000, s--;
  v.v.time.seconds = s;
  v.v.time.nanos = ns;
  return v;
}

static __int128 nanos_of(const vd_cel_value *v) {
  return (__int128)v->v.time.seconds * 1000000000 + v->v.time.nanos;
}

static vd_cel_value make_timestamp(const cel_node *n, __int128 nanos) {
  __int128 lo = (__int128)CEL_MIN_SECONDS * 1000000000,
           hi = (__int128)CEL_MAX_SECONDS * 1000000000 + 999999999;
  if (nanos < lo || nanos > hi) return ERR(n, "timestamp out of range");
  return time_value(VD_CEL_TIMESTAMP, nanos);
}

static vd_cel_value make_duration(const cel_node *n, __int128 nanos) {
  vd_cel_value v;
  if (!cel_duration_normalise(nanos, &v)) return ERR(n, "duration out of range");
  return v;
}

static vd_cel_value concat(ev *e, const cel_node *n, const vd_cel_value *a, const vd_cel_value *b) {
  if (a->kind == VD_CEL_LIST) {
    size_t na = a->v.list->count, nb = b->v.list->count;
    if (!nb) return *a;
    if (!na) return *b;
    vd_cel_list *l = vd_cel_arena_alloc(e->arena, sizeof *l);
    vd_cel_value *items = vd_cel_arena_alloc(e->arena, sizeof *items * (na + nb));
    if (!l || !items) return ERR(n, "out of memory");
    memcpy(items, a->v.list->items, sizeof *items * na);
    memcpy(items + na, b->v.list->items, sizeof *items * nb);
    l->count = na + nb;
    l->items = items;
    return vd_cel_list_value(l);
  }
  size_t na = a->v.str.len, nb = b->v.str.len;
  if (!nb) return *a;
  if (!na) return *b;
  char *s = vd_cel_arena_alloc(e->arena, na + nb);
  if (!s) return ERR(n, "out of memory");
  memcpy(s, a->v.str.data, na);
  memcpy(s + na, b->v.str.data, nb);
  vd_cel_value r = *a;
  r.v.str.data = s;
  r.v.str.len = na + nb;
  return r;
}

COLD static vd_cel_value arith(ev *e, const cel_node *n, cel_binop op, const vd_cel_value *a,
                               const vd_cel_value *b) {
  static const char *const names[] = {"+", "-", "*", "/", "%"};
  vd_cel_kind ka = a->kind, kb = b->kind;
  if (ka == VD_CEL_INT && kb == VD_CEL_INT) {
    int64_t x = a->v.i, y = b->v.i, r;
    bool overflow = false;
    switch (op) {
      case B_ADD:
        overflow = __builtin_add_overflow(x, y, &r);
        break;
      case B_SUB:
        overflow = __builtin_sub_overflow(x, y, &r);
        break;
      case B_MUL:
        overflow = __builtin_mul_overflow(x, y, &r);
        break;
      case B_DIV:
      case B_MOD:
        if (y == 0) return ERR(n, op == B_DIV ? "division by zero" : "modulus by zero");
        if (x == INT64_MIN && y == -1) {
          if (op == B_MOD) return vd_cel_int(0);
          overflow = true;
          r = 0;
          break;
        }
        r = op == B_DIV ? x / y : x % y;
        break;
      default:
        r = 0;
        break;
    }
    if (overflow) return ERR(n, "integer overflow");
    return vd_cel_int(r);
  }
  if (ka == VD_CEL_UINT && kb == VD_CEL_UINT) {
    uint64_t x = a->v.u, y = b->v.u, r;
    bool overflow = false;
    switch (op) {
      case B_ADD:
        overflow = __builtin_add_overflow(x, y, &r);
        break;
      case B_SUB:
        overflow = __builtin_sub_overflow(x, y, &r);
        break;
      case B_MUL:
        overflow = __builtin_mul_overflow(x, y, &r);
        break;
      case B_DIV:
      case B_MOD:
        if (y == 0) return ERR(n, op == B_DIV ? "division by zero" : "modulus by zero");
        r = op == B_DIV ? x / y : x % y;
        break;
      default:
        r = 0;
        break;
    }
    if (overflow) return ERR(n, "unsigned integer overflow");
    return vd_cel_uint(r);
  }
  if (ka == VD_CEL_DOUBLE && kb == VD_CEL_DOUBLE && op != B_MOD) {
    double x = a->v.d, y = b->v.d;
    return vd_cel_double(op == B_ADD ? x + y : op == B_SUB ? x - y : op == B_MUL ? x * y : x / y);
  }
  if (op == B_ADD && ka == kb && (ka == VD_CEL_STRING || ka == VD_CEL_BYTES || ka == VD_CEL_LIST))
    return concat(e, n, a, b);
  bool ta = ka == VD_CEL_TIMESTAMP, tb = kb == VD_CEL_TIMESTAMP;
  bool da = ka == VD_CEL_DURATION, db = kb == VD_CEL_DURATION;
  if (op == B_ADD) {
    if (da && db) return make_duration(n, nanos_of(a) + nanos_of(b));
    if ((ta && db) || (da && tb)) return make_timestamp(n, nanos_of(a) + nanos_of(b));
  }
  if (op == B_SUB) {
    if (da && db) return make_duration(n, nanos_of(a) - nanos_of(b));
    if (ta && db) return make_timestamp(n, nanos_of(a) - nanos_of(b));
    if (ta && tb) return make_duration(n, nanos_of(a) - nanos_of(b));
  }
  return no_overload(e, n, names[op], a, b);
}

COLD static vd_cel_value eval_in(ev *e, const cel_node *n, const vd_cel_value *x,
                                 const vd_cel_value *coll) {
  if (coll->kind == VD_CEL_LIST) {
    for (size_t i = 0; i < coll->v.list->count; i++)
      if (vd_cel_equal(x, &coll->v.list->items[i])) return vd_cel_bool(true);
    return vd_cel_bool(false);
  }
  if (coll->kind == VD_CEL_MAP) return vd_cel_bool(cel_map_find(coll->v.map, x) >= 0);
  return no_overload(e, n, "in", x, coll);
}

static vd_cel_value eval_binary(ev *e, const cel_node *n) {
  vd_cel_value a = eval(e, n->a);
  if (a.kind == VD_CEL_ERROR) return a;
  vd_cel_value b = eval(e, n->b);
  if (b.kind == VD_CEL_ERROR) return b;
  cel_binop op = (cel_binop)n->sub;
  /* Fast path for the commonest rule comparisons: two ints or two doubles. */
  if (a.kind == b.kind && op >= B_EQ && op <= B_GE &&
      (a.kind == VD_CEL_INT || a.kind == VD_CEL_DOUBLE)) {
    int order;
    if (a.kind == VD_CEL_INT) {
      order = a.v.i < b.v.i ? -1 : a.v.i > b.v.i;
    } else {
      if (isnan(a.v.d) || isnan(b.v.d)) return vd_cel_bool(op == B_NE);
      order = a.v.d < b.v.d ? -1 : a.v.d > b.v.d;
    }
    switch (op) {
      case B_EQ:
        return vd_cel_bool(order == 0);
      case B_NE:
        return vd_cel_bool(order != 0);
      case B_LT:
        return vd_cel_bool(order < 0);
      case B_LE:
        return vd_cel_bool(order <= 0);
      case B_GT:
        return vd_cel_bool(order > 0);
      default:
        return vd_cel_bool(order >= 0);
    }
  }
  switch (op) {
    case B_EQ:
      return vd_cel_bool(vd_cel_equal(&a, &b));
    case B_NE:
      return vd_cel_bool(!vd_cel_equal(&a, &b));
    case B_LT:
    case B_LE:
    case B_GT:
    case B_GE: {
      int order;
      static const char *const names[] = {"<", "<=", ">", ">="};
      if (!cel_compare(&a, &b, &order)) {
        /* NaN compares false with everything; other mismatches are type errors. */
        if ((a.kind == VD_CEL_DOUBLE && isnan(a.v.d)) || (b.kind == VD_CEL_DOUBLE && isnan(b.v.d)))
          return vd_cel_bool(false);
        return no_overload(e, n, names[op - B_LT], &a, &b);
      }
      bool r = op == B_LT   ? order < 0
               : op == B_LE ? order <= 0
               : op == B_GT ? order > 0
                            : order >= 0;
      return vd_cel_bool(r);
    }
    case B_IN:
      return eval_in(e, n, &a, &b);
    default:
      return arith(e, n, op, &a, &b);
  }
}

static vd_cel_value eval_logic(ev *e, const cel_node *n) {
  bool is_and = n->op == N_AND;
  /* Results are rebuilt from the bool rather than copied: copying a just-written value struct
   * stalls on store forwarding, and this is the hottest path of rule conditions. */
  vd_cel_value a = eval(e, n->a);
  if (a.kind == VD_CEL_BOOL && a.v.b != is_and) return vd_cel_bool(!is_and); /* false && _ */
  vd_cel_value b = eval(e, n->b);
  if (b.kind == VD_CEL_BOOL) {
    if (b.v.b != is_and) return vd_cel_bool(!is_and); /* absorbs an error on the left */
    if (a.kind == VD_CEL_BOOL) return vd_cel_bool(is_and);
  }
  if (a.kind == VD_CEL_ERROR) return a;
  if (b.kind == VD_CEL_ERROR) return b;
  return no_overload(e, n, is_and ? "&&" : "||", a.kind == VD_CEL_BOOL ? &b : &a, NULL);
}

/* ---- indexing and selection ---- */

static vd_cel_value map_get(ev *e, const cel_node *n, const vd_cel_map *m,
                            const vd_cel_value *key) {
  long i = cel_map_find(m, key);
  if (i >= 0) return m->values[i];
  if (key->kind == VD_CEL_STRING)
    return cel_errorf(e->arena, n->offset, "no such key: '%.*s'", (int)key->v.str.len,
                      key->v.str.data);
  if (!cel_is_map_key_kind(key->kind) && key->kind != VD_CEL_DOUBLE)
    return cel_errorf(e->arena, n->offset, "no such key: a %s cannot be a map key",
                      vd_cel_kind_name(key->kind));
  return ERR(n, "no such key");
}

COLD static vd_cel_value eval_index(ev *e, const cel_node *n) {
  vd_cel_value a = eval(e, n->a);
  if (a.kind == VD_CEL_ERROR) return a;
  vd_cel_value i = eval(e, n->b);
  if (i.kind == VD_CEL_ERROR) return i;
  if (a.kind == VD_CEL_MAP) return map_get(e, n, a.v.map, &i);
  if (a.kind != VD_CEL_LIST) return no_overload(e, n, "[]", &a, &i);
  int64_t idx;
  if (i.kind == VD_CEL_INT) {
    idx = i.v.i;
  } else if (i.kind == VD_CEL_UINT) {
    idx = i.v.u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)i.v.u;
  } else if (i.kind == VD_CEL_DOUBLE) {
    if (!(i.v.d == trunc(i.v.d)) || fabs(i.v.d) > 9.0e18)
      return ERR(n, "list index is not an integer");
    idx = (int64_t)i.v.d;
  } else {
    return no_overload(e, n, "[]", &a, &i);
  }
  if (idx < 0 || (uint64_t)idx >= a.v.list->count)
    return cel_errorf(e->arena, n->offset, "index %" PRId64 " out of range (list size %zu)", idx,
                      a.v.list->count);
  return a.v.list->items[idx];
}

COLD static vd_cel_value eval_select(ev *e, const cel_node *n) {
  vd_cel_value a = eval(e, n->a);
  if (a.kind == VD_CEL_ERROR) return a;
  if (a.kind != VD_CEL_MAP)
    return cel_errorf(e->arena, n->offset, "no field '%s' on a value of type %s", n->name,
                      vd_cel_kind_name(a.kind));
  vd_cel_value key = vd_cel_string(n->name, strlen(n->name));
  return map_get(e, n, a.v.map, &key);
}

COLD static vd_cel_value eval_has(ev *e, const cel_node *n) {
  const cel_node *sel = n->a;
  if (sel->op == N_SLOT) {
    if (sel->slot >= e->slot_count) return vd_cel_bool(false);
    record_read(e, sel);
    return vd_cel_bool(e->slots[sel->slot].kind != VD_CEL_UNSET);
  }
  vd_cel_value a = eval(e, sel->a);
  if (a.kind == VD_CEL_ERROR) return a;
  if (a.kind != VD_CEL_MAP) return no_overload(e, n, "has", &a, NULL);
  vd_cel_value key = vd_cel_string(sel->name, strlen(sel->name));
  return vd_cel_bool(cel_map_find(a.v.map, &key) >= 0);
}

/* ---- literals built at run time ---- */

COLD static vd_cel_value eval_aggregate(ev *e, const cel_node *n) {
  bool is_map = n->op == N_MAP;
  vd_cel_value *items = vd_cel_arena_alloc(e->arena, sizeof *items * (n->nargs ? n->nargs : 1));
  if (!items) return ERR(n, "out of memory");
  uint32_t count = is_map ? n->nargs / 2 : n->nargs;
  for (uint32_t i = 0; i < n->nargs; i++) {
    /* maps: keys first, then values, as vd_cel_map wants them */
    uint32_t at = is_map ? (i % 2 ? count + i / 2 : i / 2) : i;
    items[at] = eval(e, n->args[i]);
    if (items[at].kind == VD_CEL_ERROR) return items[at];
    if (is_map && i % 2 == 0) {
      if (!cel_is_map_key_kind(items[at].kind))
        return cel_errorf(e->arena, n->args[i]->offset, "unsupported map key type %s",
                          vd_cel_kind_name(items[at].kind));
      for (uint32_t j = 0; j < at; j++)
        if (vd_cel_equal(&items[j], &items[at])) return ERR(n->args[i], "repeated map key");
    }
  }
  if (is_map) {
    vd_cel_map *m = vd_cel_arena_alloc(e->arena, sizeof *m);
    if (!m) return ERR(n, "out of memory");
    m->count = count;
    m->keys = items;
    m->values = items + count;
    return vd_cel_map_value(m);
  }
  vd_cel_list *l = vd_cel_arena_alloc(e->arena, sizeof *l);
  if (!l) return ERR(n, "out of memory");
  l->count = count;
  l->items = items;
  return vd_cel_list_value(l);
}

/* ---- comprehensions (the macros) ---- */

COLD static vd_cel_value eval_comprehension(ev *e, const cel_node *n) {
  vd_cel_value range = eval(e, n->a);
  if (range.kind == VD_CEL_ERROR) return range;
  const vd_cel_value *elems;
  size_t count;
  if (range.kind == VD_CEL_LIST) {
    elems = range.v.list->items;
    count = range.v.list->count;
  } else if (range.kind == VD_CEL_MAP) {
    elems = range.v.map->keys;
    count = range.v.map->count;
  } else {
    return cel_errorf(e->arena, n->offset, "cannot iterate over %s (a list or map is needed)",
                      vd_cel_kind_name(range.kind));
  }
  cel_macro m = (cel_macro)n->sub;
  vd_cel_value *out = NULL;
  size_t nout = 0, matches = 0;
  if (m == M_MAP || m == M_FILTER) {
    out = vd_cel_arena_alloc(e->arena, sizeof *out * (count ? count : 1));
    if (!out) return ERR(n, "out of memory");
  }
  vd_cel_value error = {.kind = VD_CEL_UNSET};
  vd_cel_value *local = &e->locals[n->local];
  for (size_t i = 0; i < count; i++) {
    if (++e->iterations > CEL_MAX_ITERATIONS)
      return ERR(n, "evaluation exceeded its budget of comprehension steps");
    *local = elems[i];
    vd_cel_value v = eval(e, n->b);
    bool predicate = m != M_MAP || n->c;
    if (predicate && v.kind != VD_CEL_BOOL) {
      vd_cel_value err = v.kind == VD_CEL_ERROR ? v : no_overload(e, n->b, "predicate", &v, NULL);
      if (m == M_ALL || m == M_EXISTS) {
        if (error.kind == VD_CEL_UNSET) error = err;
        continue; /* a later decisive element can still absorb it */
      }
      return err;
    }
    switch (m) {
      case M_ALL:
        if (!v.v.b) return vd_cel_bool(false);
        break;
      case M_EXISTS:
        if (v.v.b) return vd_cel_bool(true);
        break;
      case M_EXISTS_ONE:
        matches += v.v.b;
        break;
      case M_FILTER:
        if (v.v.b) out[nout++] = elems[i];
        break;
      case M_MAP:
        if (n->c) {
          if (!v.v.b) break;
          v = eval(e, n->c);
        }
        if (v.kind == VD_CEL_ERROR) return v;
        out[nout++] = v;
        break;
    }
  }
  if (error.kind == VD_CEL_ERROR) return error;
  switch (m) {
    case M_ALL:
      return vd_cel_bool(true);
    case M_EXISTS:
      return vd_cel_bool(false);
    case M_EXISTS_ONE:
      return vd_cel_bool(matches == 1);
    default: {
      vd_cel_list *l = vd_cel_arena_alloc(e->arena, sizeof *l);
      if (!l) return ERR(n, "out of memory");
      l->count = nout;
      l->items = out;
      return vd_cel_list_value(l);
    }
  }
}

/* ---- functions ---- */

static vd_cel_value string_of(ev *e, const cel_node *n, const char *s) {
  size_t len = strlen(s);
  char *copy = cel_arena_strndup(e->arena, s, len);
  return copy ? vd_cel_string(copy, len) : ERR(n, "out of memory");
}

static bool parse_int_text(const vd_cel_value *s, bool is_unsigned, int64_t *i, uint64_t *u) {
  char buf[32];
  size_t len = s->v.str.len;
  if (len == 0 || len >= sizeof buf) return false;
  memcpy(buf, s->v.str.data, len);
  buf[len] = '\0';
  for (size_t k = 0; k < len; k++)
    if (!((buf[k] >= '0' && buf[k] <= '9') || (k == 0 && (buf[k] == '-' || buf[k] == '+'))))
      return false;
  char *end;
  errno = 0;
  if (is_unsigned) {
    if (buf[0] == '-') return false;
    *u = strtoull(buf, &end, 10);
  } else {
    *i = strtoll(buf, &end, 10);
  }
  return errno == 0 && *end == '\0' && end != buf;
}

static vd_cel_value convert(ev *e, const cel_node *n, cel_fn fn, const vd_cel_value *x) {
  const double two63 = 9223372036854775808.0, two64 = 18446744073709551616.0;
  char buf[64];
  switch (fn) {
    case F_INT:
      switch (x->kind) {
        case VD_CEL_INT:
          return *x;
        case VD_CEL_UINT:
          if (x->v.u > (uint64_t)INT64_MAX) return ERR(n, "int() overflow");
          return vd_cel_int((int64_t)x->v.u);
        case VD_CEL_DOUBLE:
          if (!(x->v.d > -two63 && x->v.d < two63)) return ERR(n, "int() overflow");
          return vd_cel_int((int64_t)x->v.d);
        case VD_CEL_STRING: {
          int64_t i;
          if (!parse_int_text(x, false, &i, NULL)) return ERR(n, "int() cannot parse the string");
          return vd_cel_int(i);
        }
        case VD_CEL_TIMESTAMP:
          return vd_cel_int(x->v.time.seconds);
        default:
          break;
      }
      break;
    case F_UINT:
      switch (x->kind) {
        case VD_CEL_UINT:
          return *x;
        case VD_CEL_INT:
          if (x->v.i < 0) return ERR(n, "uint() of a negative number");
          return vd_cel_uint((uint64_t)x->v.i);
        case VD_CEL_DOUBLE:
          if (!(x->v.d > -1.0 && x->v.d < two64)) return ERR(n, "uint() overflow");
          return vd_cel_uint((uint64_t)x->v.d);
        case VD_CEL_STRING: {
          uint64_t u;
          if (!parse_int_text(x, true, NULL, &u)) return ERR(n, "uint() cannot parse the string");
          return vd_cel_uint(u);
        }
        default:
          break;
      }
      break;
    case F_DOUBLE:
      switch (x->kind) {
        case VD_CEL_DOUBLE:
          return *x;
        case VD_CEL_INT:
          return vd_cel_double((double)x->v.i);
        case VD_CEL_UINT:
          return vd_cel_double((double)x->v.u);
        case VD_CEL_STRING: {
          size_t len = x->v.str.len;
          if (len == 0 || len >= sizeof buf) return ERR(n, "double() cannot parse the string");
          memcpy(buf, x->v.str.data, len);
          buf[len] = '\0';
          char *end;
          double d = strtod(buf, &end);
          if (*end || buf[0] == ' ' || (buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X')))
            return ERR(n, "double() cannot parse the string");
          return vd_cel_double(d);
        }
        default:
          break;
      }
      break;
    case F_STRING:
      switch (x->kind) {
        case VD_CEL_STRING:
          return *x;
        case VD_CEL_INT:
          snprintf(buf, sizeof buf, "%" PRId64, x->v.i);
          return string_of(e, n, buf);
        case VD_CEL_UINT:
          snprintf(buf, sizeof buf, "%" PRIu64, x->v.u);
          return string_of(e, n, buf);
        case VD_CEL_DOUBLE:
          cel_format_double(x->v.d, buf, sizeof buf);
          return string_of(e, n, buf);
        case VD_CEL_BOOL:
          return vd_cel_string(x->v.b ? "true" : "false", x->v.b ? 4 : 5);
        case VD_CEL_BYTES:
          if (!vd_cel_utf8_valid(x->v.str.data, x->v.str.len))
            return ERR(n, "string() of bytes that are not valid UTF-8");
          return vd_cel_string(x->v.str.data, x->v.str.len);
        case VD_CEL_TIMESTAMP:
          cel_format_timestamp(x->v.time.seconds, x->v.time.nanos, buf, sizeof buf);
          return string_of(e, n, buf);
        case VD_CEL_DURATION:
          cel_format_duration(x->v.time.seconds, x->v.time.nanos, buf, sizeof buf);
          return string_of(e, n, buf);
        default:
          break;
      }
      break;
    case F_BOOL:
      if (x->kind == VD_CEL_BOOL) return *x;
      if (x->kind == VD_CEL_STRING) {
        static const char *const yes[] = {"1", "t", "T", "true", "TRUE", "True"};
        static const char *const no[] = {"0", "f", "F", "false", "FALSE", "False"};
        for (size_t i = 0; i < 6; i++) {
          if (x->v.str.len == strlen(yes[i]) && memcmp(x->v.str.data, yes[i], x->v.str.len) == 0)
            return vd_cel_bool(true);
          if (x->v.str.len == strlen(no[i]) && memcmp(x->v.str.data, no[i], x->v.str.len) == 0)
            return vd_cel_bool(false);
        }
        return ERR(n, "bool() cannot parse the string");
      }
      break;
    case F_BYTES:
      if (x->kind == VD_CEL_BYTES) return *x;
      if (x->kind == VD_CEL_STRING) return vd_cel_bytes(x->v.str.data, x->v.str.len);
      break;
    case F_TYPE:
      return (vd_cel_value){.kind = VD_CEL_TYPE, .v.type_kind = x->kind};
    case F_DYN:
      return *x;
    case F_TIMESTAMP:
      if (x->kind == VD_CEL_TIMESTAMP) return *x;
      if (x->kind == VD_CEL_INT) return make_timestamp(n, (__int128)x->v.i * 1000000000);
      if (x->kind == VD_CEL_STRING) {
        vd_error err;
        vd_cel_value v;
        if (!vd_cel_timestamp_parse(x->v.str.data, x->v.str.len, &v, &err))
          return cel_errorf(e->arena, n->offset, "%s", err.message);
        return v;
      }
      break;
    case F_DURATION:
      if (x->kind == VD_CEL_DURATION) return *x;
      if (x->kind == VD_CEL_STRING) {
        vd_error err;
        vd_cel_value v;
        if (!vd_cel_duration_parse(x->v.str.data, x->v.str.len, &v, &err))
          return cel_errorf(e->arena, n->offset, "%s", err.message);
        return v;
      }
      break;
    default:
      break;
  }
  return no_overload(e, n, n->name, x, NULL);
}

static void *arena_malloc(PCRE2_SIZE size, void *arena) { return vd_cel_arena_alloc(arena, size); }
static void arena_free(void *p, void *arena) { (void)p, (void)arena; }

static vd_cel_value regex_match(ev *e, const cel_node *n, const vd_cel_value *s,
                                const vd_cel_value *pattern) {
  pcre2_general_context *gc = pcre2_general_context_create(arena_malloc, arena_free, e->arena);
  if (!gc) return ERR(n, "out of memory");
  const pcre2_code *re = n->extra;
  if (!re) {
    pcre2_compile_context *cc = pcre2_compile_context_create(gc);
    if (!cc) return ERR(n, "out of memory");
    int code = 0;
    PCRE2_SIZE where;
    re = cc ? pcre2_compile((PCRE2_SPTR)pattern->v.str.data, pattern->v.str.len, CEL_REGEX_OPTIONS,
                            &code, &where, cc)
            : NULL;
    if (!re) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(code, msg, sizeof msg);
      return cel_errorf(e->arena, n->offset, "invalid regular expression: %s", (const char *)msg);
    }
  }
  /* Match data and the backtracking frames come from the arena too (through gc), so a match
   * needs no heap when the scratch buffer is large enough. */
  pcre2_match_data *md = pcre2_match_data_create(1, gc);
  pcre2_match_context *mc = pcre2_match_context_create(gc);
  if (!md || !mc) return ERR(n, "out of memory");
  pcre2_set_match_limit(mc, CEL_REGEX_MATCH_LIMIT);
  pcre2_set_depth_limit(mc, CEL_REGEX_DEPTH_LIMIT);
  pcre2_set_heap_limit(mc, CEL_REGEX_HEAP_LIMIT_KB);
  int rc = pcre2_match(re, (PCRE2_SPTR)s->v.str.data, s->v.str.len, 0, PCRE2_NO_UTF_CHECK, md, mc);
  if (rc >= 0) return vd_cel_bool(true);
  if (rc == PCRE2_ERROR_NOMATCH) return vd_cel_bool(false);
  if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT ||
      rc == PCRE2_ERROR_JIT_STACKLIMIT)
    return ERR(n, "regular expression exceeded its match limit");
  return ERR(n, "regular expression match failed");
}

static bool bytes_has(const vd_cel_value *s, const vd_cel_value *sub, cel_fn fn) {
  size_t n = s->v.str.len, m = sub->v.str.len;
  if (m > n) return false;
  if (m == 0) return true;
  if (fn == F_STARTS_WITH) return memcmp(s->v.str.data, sub->v.str.data, m) == 0;
  if (fn == F_ENDS_WITH) return memcmp(s->v.str.data + n - m, sub->v.str.data, m) == 0;
  const char *first = s->v.str.data, *last = s->v.str.data + (n - m);
  for (const char *p = first; p <= last; p++) {
    p = memchr(p, sub->v.str.data[0], (size_t)(last - p) + 1);
    if (!p) return false;
    if (memcmp(p, sub->v.str.data, m) == 0) return true;
  }
  return false;
}

static vd_cel_value time_accessor(ev *e, const cel_node *n, cel_fn fn, const vd_cel_value *t) {
  if (t->kind == VD_CEL_DURATION) {
    int64_t s = t->v.time.seconds;
    switch (fn) {
      case F_GET_HOURS:
        return vd_cel_int(s / 3600);
      case F_GET_MINUTES:
        return vd_cel_int(s / 60);
      case F_GET_SECONDS:
        return vd_cel_int(s);
      case F_GET_MILLISECONDS:
        return vd_cel_int(s * 1000 + t->v.time.nanos / 1000000);
      default:
        return no_overload(e, n, n->name, t, NULL);
    }
  }
  if (t->kind != VD_CEL_TIMESTAMP) return no_overload(e, n, n->name, t, NULL);
  int32_t offset = 0;
  if (n->nargs == 1) {
    const cel_zone *zone = n->extra;
    if (!zone) {
      vd_cel_value tz = eval(e, n->args[0]);
      if (tz.kind == VD_CEL_ERROR) return tz;
      if (tz.kind != VD_CEL_STRING) return no_overload(e, n, n->name, &tz, NULL);
      const char *why = NULL;
      zone = cel_zone_load(tz.v.str.data, tz.v.str.len, e->arena, &why);
      if (!zone)
        return cel_errorf(e->arena, n->args[0]->offset, "time zone '%.*s': %s",
                          (int)(tz.v.str.len > 64 ? 64 : tz.v.str.len), tz.v.str.data, why);
    }
    offset = cel_zone_offset(zone, t->v.time.seconds);
  }
  cel_civil c;
  cel_civil_from_unix(t->v.time.seconds + offset, &c);
  switch (fn) {
    case F_GET_FULL_YEAR:
      return vd_cel_int(c.year);
    case F_GET_MONTH:
      return vd_cel_int(c.month - 1);
    case F_GET_DAY_OF_YEAR:
      return vd_cel_int(c.yday);
    case F_GET_DAY_OF_MONTH:
      return vd_cel_int(c.day - 1);
    case F_GET_DATE:
      return vd_cel_int(c.day);
    case F_GET_DAY_OF_WEEK:
      return vd_cel_int(c.wday);
    case F_GET_HOURS:
      return vd_cel_int(c.hour);
    case F_GET_MINUTES:
      return vd_cel_int(c.minute);
    case F_GET_SECONDS:
      return vd_cel_int(c.second);
    case F_GET_MILLISECONDS:
      return vd_cel_int(t->v.time.nanos / 1000000);
    default:
      return no_overload(e, n, n->name, t, NULL);
  }
}

COLD static vd_cel_value eval_call(ev *e, const cel_node *n) {
  cel_fn fn = (cel_fn)n->sub;
  vd_cel_value target = {.kind = VD_CEL_NULL};
  if (n->a) {
    target = eval(e, n->a);
    if (target.kind == VD_CEL_ERROR) return target;
  }
  if (fn >= F_GET_FULL_YEAR) return time_accessor(e, n, fn, &target);
  vd_cel_value arg = {.kind = VD_CEL_NULL};
  if (n->nargs) {
    arg = eval(e, n->args[0]);
    if (arg.kind == VD_CEL_ERROR) return arg;
  }
  switch (fn) {
    case F_SIZE:
      switch (target.kind) {
        case VD_CEL_STRING:
          return vd_cel_int((int64_t)vd_utf8_count(target.v.str.data, target.v.str.len));
        case VD_CEL_BYTES:
          return vd_cel_int((int64_t)target.v.str.len);
        case VD_CEL_LIST:
          return vd_cel_int((int64_t)target.v.list->count);
        case VD_CEL_MAP:
          return vd_cel_int((int64_t)target.v.map->count);
        default:
          return no_overload(e, n, "size", &target, NULL);
      }
    case F_CONTAINS:
    case F_STARTS_WITH:
    case F_ENDS_WITH:
    case F_MATCHES:
      if (target.kind != VD_CEL_STRING || arg.kind != VD_CEL_STRING)
        return no_overload(e, n, n->name, &target, &arg);
      if (fn == F_MATCHES) return regex_match(e, n, &target, &arg);
      return vd_cel_bool(bytes_has(&target, &arg, fn));
    default:
      return convert(e, n, fn, &arg);
  }
}

static vd_cel_value eval_node(ev *e, const cel_node *n) {
  switch ((cel_op)n->op) {
    case N_LIT:
      return n->lit;
    case N_SLOT:
      return read_slot(e, n);
    case N_LOCAL:
      return e->locals[n->local];
    case N_SELECT:
      return eval_select(e, n);
    case N_INDEX:
      return eval_index(e, n);
    case N_CALL:
      return eval_call(e, n);
    case N_LIST:
    case N_MAP:
      return eval_aggregate(e, n);
    case N_COND: {
      vd_cel_value c = eval(e, n->a);
      if (c.kind == VD_CEL_ERROR) return c;
      if (c.kind != VD_CEL_BOOL) return no_overload(e, n, "?:", &c, NULL);
      return eval(e, c.v.b ? n->b : n->c);
    }
    case N_AND:
    case N_OR:
      return eval_logic(e, n);
    case N_NOT: {
      vd_cel_value a = eval(e, n->a);
      if (a.kind == VD_CEL_BOOL) return vd_cel_bool(!a.v.b);
      return a.kind == VD_CEL_ERROR ? a : no_overload(e, n, "!", &a, NULL);
    }
    case N_NEG: {
      vd_cel_value a = eval(e, n->a);
      if (a.kind == VD_CEL_INT) {
        if (a.v.i == INT64_MIN) return ERR(n, "integer overflow");
        return vd_cel_int(-a.v.i);
      }
      if (a.kind == VD_CEL_DOUBLE) return vd_cel_double(-a.v.d);
      if (a.kind == VD_CEL_DURATION) return make_duration(n, -nanos_of(&a));
      return a.kind == VD_CEL_ERROR ? a : no_overload(e, n, "-", &a, NULL);
    }
    case N_BINARY:
      return eval_binary(e, n);
    case N_HAS:
      return eval_has(e, n);
    case N_COMPREHENSION:
      return eval_comprehension(e, n);
    case N_IDENT:
      break;
  }
  return ERR(n, "internal error: unchecked node");
}

static vd_cel_value eval(ev *e, const cel_node *n) { return eval_node(e, n); }

bool vd_cel_eval(const vd_cel_program *program, const vd_cel_value *slots, size_t slot_count,
                 vd_cel_arena *arena, vd_cel_value *result, size_t *read_slots,
                 size_t *read_count) {
  ev e;
  e.prog = program;
  e.slots = slots;
  e.slot_count = slot_count;
  e.arena = arena;
  e.reads = read_slots;
  e.nreads = 0;
  e.seen = 0;
  e.iterations = 0;
  *result = eval(&e, program->root);
  if (read_count) *read_count = e.nreads;
  return result->kind != VD_CEL_ERROR;
}
