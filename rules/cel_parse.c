/* cel_parse.c: recursive-descent parser for CEL's grammar (cel-spec langdef "Syntax"), building
 * a tree with source offsets and expanding the macros has/all/exists/exists_one/map/filter. */
#include <string.h>

#include "cel_internal.h"

#include "vd_utf8.h"

typedef struct parser {
  cel_lexer lx;
  cel_token tok; /* current token */
  cel_diag *diag;
  int depth;
} parser;

static bool advance(parser *p) { return cel_lex_next(&p->lx, &p->tok); }

static bool expect(parser *p, cel_tok kind, const char *context) {
  if (p->tok.kind != kind)
    return cel_diag_set(p->diag, p->tok.offset, "expected %s %s, found %s", cel_tok_name(kind),
                        context, cel_tok_name(p->tok.kind));
  return advance(p);
}

static cel_node *node_new(parser *p, cel_op op, uint32_t offset) {
  cel_node *n = vd_cel_arena_alloc(p->lx.arena, sizeof *n);
  if (!n) {
    cel_diag_set(p->diag, offset, "out of memory");
    return NULL;
  }
  memset(n, 0, sizeof *n);
  n->op = (uint8_t)op;
  n->offset = offset;
  n->height = 1;
  return n;
}

/* Sets n's height from its children; refuses trees too tall to walk safely. */
static cel_node *finish(parser *p, cel_node *n) {
  if (!n) return NULL;
  unsigned h = 0;
  const cel_node *kids[3] = {n->a, n->b, n->c};
  for (int i = 0; i < 3; i++)
    if (kids[i] && kids[i]->height > h) h = kids[i]->height;
  for (uint32_t i = 0; i < n->nargs; i++)
    if (n->args[i]->height > h) h = n->args[i]->height;
  if (h + 1 > CEL_MAX_HEIGHT) {
    cel_diag_set(p->diag, n->offset, "expression is nested too deeply (more than %d levels)",
                 CEL_MAX_HEIGHT);
    return NULL;
  }
  n->height = (uint16_t)(h + 1);
  return n;
}

static cel_node *parse_expr(parser *p);

/* A growable array of nodes in the arena (reallocated by copying: arenas do not free). */
typedef struct node_vec {
  cel_node **items;
  uint32_t count, capacity;
} node_vec;

static bool vec_push(parser *p, node_vec *v, cel_node *n) {
  if (v->count == v->capacity) {
    uint32_t cap = v->capacity ? v->capacity * 2 : 4;
    cel_node **items = vd_cel_arena_alloc(
        p->lx.arena,
        sizeof(cel_node *) * cap);  // NOLINT(bugprone-sizeof-expression): an array of pointers
    if (!items) return cel_diag_set(p->diag, n->offset, "out of memory");
    if (v->count)
      memcpy(items, v->items, sizeof(cel_node *) * v->count);  // NOLINT(bugprone-sizeof-expression)
    v->items = items;
    v->capacity = cap;
  }
  v->items[v->count++] = n;
  return true;
}

/* Comma-separated expressions up to `close`, allowing a trailing comma. For maps, `key: value`. */
static bool parse_list(parser *p, cel_tok close, bool pairs, node_vec *out) {
  while (p->tok.kind != close) {
    cel_node *e = parse_expr(p);
    if (!e || !vec_push(p, out, e)) return false;
    if (pairs) {
      if (!expect(p, T_COLON, "between a map key and its value")) return false;
      cel_node *v = parse_expr(p);
      if (!v || !vec_push(p, out, v)) return false;
    }
    if (p->tok.kind != T_COMMA) break;
    if (!advance(p)) return false;
  }
  return expect(p, close,
                pairs               ? "to close the map"
                : close == T_RPAREN ? "to close the call"
                                    : "to close the list");
}

static const struct {
  const char *name;
  cel_macro macro;
  uint32_t args;
} macros[] = {
    {"all", M_ALL, 2}, {"exists", M_EXISTS, 2}, {"exists_one", M_EXISTS_ONE, 2},
    {"map", M_MAP, 2}, {"map", M_MAP, 3},       {"filter", M_FILTER, 2},
};

/* target.name(args) or name(args): expands macros, otherwise a call node. */
static cel_node *make_call(parser *p, cel_node *target, const char *name, uint32_t offset,
                           node_vec *args) {
  if (!target && strcmp(name, "has") == 0) {
    if (args->count != 1 || args->items[0]->op != N_SELECT) {
      cel_diag_set(p->diag, offset, "has() takes one field selection, like has(m.field)");
      return NULL;
    }
    cel_node *n = node_new(p, N_HAS, offset);
    if (n) n->a = args->items[0];
    return finish(p, n);
  }
  if (target) {
    for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++) {
      if (strcmp(macros[i].name, name) != 0 || macros[i].args != args->count || args->count < 2)
        continue;
      cel_node *var = args->items[0];
      if (var->op != N_IDENT || var->flags) {
        cel_diag_set(p->diag, var->offset, "%s() needs a variable name as its first argument",
                     name);
        return NULL;
      }
      cel_node *n = node_new(p, N_COMPREHENSION, offset);
      if (!n) return NULL;
      n->sub = (uint8_t)macros[i].macro;
      n->name = var->name;
      n->a = target;
      n->b = args->items[1];
      n->c = args->count == 3 ? args->items[2] : NULL;
      return finish(p, n);
    }
  }
  cel_node *n = node_new(p, N_CALL, offset);
  if (!n) return NULL;
  n->name = name;
  n->a = target;
  n->args = args->items;
  n->nargs = args->count;
  return finish(p, n);
}

static cel_node *literal(parser *p) {
  cel_node *n = node_new(p, N_LIT, p->tok.offset);
  if (!n) return NULL;
  n->lit = p->tok.value;
  if (p->tok.kind == T_INT) {
    if (p->tok.value.v.u > (uint64_t)INT64_MAX) {
      cel_diag_set(p->diag, p->tok.offset, "integer literal out of range");
      return NULL;
    }
    n->lit = vd_cel_int((int64_t)p->tok.value.v.u);
  }
  return advance(p) ? n : NULL;
}

static cel_node *parse_primary(parser *p) {
  uint32_t offset = p->tok.offset;
  switch (p->tok.kind) {
    case T_INT:
    case T_UINT:
    case T_DOUBLE:
    case T_STRING:
    case T_BYTES:
    case T_TRUE:
    case T_FALSE:
    case T_NULL:
      return literal(p);
    case T_LPAREN: {
      if (!advance(p)) return NULL;
      cel_node *e = parse_expr(p);
      if (!e || !expect(p, T_RPAREN, "to close '('")) return NULL;
      return e;
    }
    case T_LBRACKET:
    case T_LBRACE: {
      bool is_map = p->tok.kind == T_LBRACE;
      if (!advance(p)) return NULL;
      node_vec items = {0};
      if (!parse_list(p, is_map ? T_RBRACE : T_RBRACKET, is_map, &items)) return NULL;
      cel_node *n = node_new(p, is_map ? N_MAP : N_LIST, offset);
      if (!n) return NULL;
      n->args = items.items;
      n->nargs = items.count;
      return finish(p, n);
    }
    case T_DOT:
    case T_IDENT: {
      bool absolute = p->tok.kind == T_DOT;
      if (absolute && (!advance(p) || p->tok.kind != T_IDENT)) {
        cel_diag_set(p->diag, p->tok.offset, "expected a name after a leading '.'");
        return NULL;
      }
      const char *name = p->tok.text;
      uint32_t name_offset = p->tok.offset;
      if (!advance(p)) return NULL;
      if (p->tok.kind == T_LPAREN && !absolute) {
        if (!advance(p)) return NULL;
        node_vec args = {0};
        if (!parse_list(p, T_RPAREN, false, &args)) return NULL;
        return make_call(p, NULL, name, name_offset, &args);
      }
      if (p->tok.kind == T_LBRACE) {
        cel_diag_set(p->diag, p->tok.offset,
                     "message construction (Name{field: ...}) is not supported");
        return NULL;
      }
      cel_node *n = node_new(p, N_IDENT, absolute ? offset : name_offset);
      if (!n) return NULL;
      n->name = name;
      n->flags = absolute ? CEL_ABSOLUTE : 0;
      return n;
    }
    case T_EOF:
      cel_diag_set(p->diag, offset, "unexpected end of expression");
      return NULL;
    default:
      cel_diag_set(p->diag, offset, "unexpected %s", cel_tok_name(p->tok.kind));
      return NULL;
  }
}

static cel_node *parse_member(parser *p) {
  cel_node *e = parse_primary(p);
  while (e) {
    if (p->tok.kind == T_DOT) {
      if (!advance(p)) return NULL;
      if (p->tok.kind != T_IDENT && p->tok.kind != T_QIDENT) {
        cel_diag_set(p->diag, p->tok.offset, "expected a field name after '.', found %s",
                     cel_tok_name(p->tok.kind));
        return NULL;
      }
      bool quoted = p->tok.kind == T_QIDENT;
      const char *name = p->tok.text;
      uint32_t offset = p->tok.offset;
      if (!advance(p)) return NULL;
      if (p->tok.kind == T_LPAREN && !quoted) {
        if (!advance(p)) return NULL;
        node_vec args = {0};
        if (!parse_list(p, T_RPAREN, false, &args)) return NULL;
        e = make_call(p, e, name, offset, &args);
      } else {
        cel_node *n = node_new(p, N_SELECT, offset);
        if (!n) return NULL;
        n->a = e;
        n->name = name;
        e = finish(p, n);
      }
    } else if (p->tok.kind == T_LBRACKET) {
      uint32_t offset = p->tok.offset;
      if (!advance(p)) return NULL;
      cel_node *index = parse_expr(p);
      if (!index || !expect(p, T_RBRACKET, "to close the index")) return NULL;
      cel_node *n = node_new(p, N_INDEX, offset);
      if (!n) return NULL;
      n->a = e;
      n->b = index;
      e = finish(p, n);
    } else {
      break;
    }
  }
  return e;
}

static cel_node *parse_unary(parser *p) {
  uint32_t offset = p->tok.offset;
  if (p->tok.kind == T_BANG || p->tok.kind == T_MINUS) {
    bool neg = p->tok.kind == T_MINUS;
    if (!advance(p)) return NULL;
    /* A minus directly before an integer literal makes a negative literal, so that
     * -9223372036854775808 is representable. */
    if (neg && p->tok.kind == T_INT) {
      uint64_t mag = p->tok.value.v.u;
      cel_lexer saved = p->lx;
      cel_token lit = p->tok;
      if (!advance(p)) return NULL;
      if (p->tok.kind != T_DOT && p->tok.kind != T_LBRACKET) {
        if (mag > (uint64_t)INT64_MAX + 1) {
          cel_diag_set(p->diag, lit.offset, "integer literal out of range");
          return NULL;
        }
        cel_node *n = node_new(p, N_LIT, offset);
        if (n) n->lit = vd_cel_int(mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag);
        return n;
      }
      p->lx = saved; /* -1.foo(): the member binds tighter; re-read the literal */
      p->tok = lit;
    }
    if (neg && p->tok.kind == T_DOUBLE) {
      cel_lexer saved = p->lx;
      cel_token lit = p->tok;
      if (!advance(p)) return NULL;
      if (p->tok.kind != T_DOT && p->tok.kind != T_LBRACKET) {
        cel_node *n = node_new(p, N_LIT, offset);
        if (n) n->lit = vd_cel_double(-lit.value.v.d);
        return n;
      }
      p->lx = saved;
      p->tok = lit;
    }
    /* A chain of prefix operators recurses once per operator: bound it before recursing (the
     * tree-height check in finish() only runs on the way back, too late for the stack). */
    if (++p->depth > CEL_MAX_HEIGHT) {
      cel_diag_set(p->diag, offset, "expression is nested too deeply (more than %d levels)",
                   CEL_MAX_HEIGHT);
      return NULL;
    }
    cel_node *operand = parse_unary(p);
    p->depth--;
    if (!operand) return NULL;
    cel_node *n = node_new(p, neg ? N_NEG : N_NOT, offset);
    if (!n) return NULL;
    n->a = operand;
    return finish(p, n);
  }
  return parse_member(p);
}

static cel_node *binary(parser *p, cel_op op, cel_binop sub, uint32_t offset, cel_node *a,
                        cel_node *b) {
  cel_node *n = node_new(p, op, offset);
  if (!n) return NULL;
  n->sub = (uint8_t)sub;
  n->a = a;
  n->b = b;
  return finish(p, n);
}

static cel_node *parse_multiplicative(parser *p) {
  cel_node *e = parse_unary(p);
  while (e && (p->tok.kind == T_STAR || p->tok.kind == T_SLASH || p->tok.kind == T_PERCENT)) {
    cel_binop op = p->tok.kind == T_STAR ? B_MUL : p->tok.kind == T_SLASH ? B_DIV : B_MOD;
    uint32_t offset = p->tok.offset;
    if (!advance(p)) return NULL;
    cel_node *r = parse_unary(p);
    e = r ? binary(p, N_BINARY, op, offset, e, r) : NULL;
  }
  return e;
}

static cel_node *parse_additive(parser *p) {
  cel_node *e = parse_multiplicative(p);
  while (e && (p->tok.kind == T_PLUS || p->tok.kind == T_MINUS)) {
    cel_binop op = p->tok.kind == T_PLUS ? B_ADD : B_SUB;
    uint32_t offset = p->tok.offset;
    if (!advance(p)) return NULL;
    cel_node *r = parse_multiplicative(p);
    e = r ? binary(p, N_BINARY, op, offset, e, r) : NULL;
  }
  return e;
}

static bool relop(cel_tok t, cel_binop *op) {
  switch (t) {
    case T_EQ:
      *op = B_EQ;
      return true;
    case T_NE:
      *op = B_NE;
      return true;
    case T_LT:
      *op = B_LT;
      return true;
    case T_LE:
      *op = B_LE;
      return true;
    case T_GT:
      *op = B_GT;
      return true;
    case T_GE:
      *op = B_GE;
      return true;
    case T_IN:
      *op = B_IN;
      return true;
    default:
      return false;
  }
}

static cel_node *parse_relation(parser *p) {
  cel_node *e = parse_additive(p);
  cel_binop op;
  while (e && relop(p->tok.kind, &op)) {
    uint32_t offset = p->tok.offset;
    if (!advance(p)) return NULL;
    cel_node *r = parse_additive(p);
    e = r ? binary(p, N_BINARY, op, offset, e, r) : NULL;
  }
  return e;
}

static cel_node *parse_and(parser *p) {
  cel_node *e = parse_relation(p);
  while (e && p->tok.kind == T_AND) {
    uint32_t offset = p->tok.offset;
    if (!advance(p)) return NULL;
    cel_node *r = parse_relation(p);
    e = r ? binary(p, N_AND, 0, offset, e, r) : NULL;
  }
  return e;
}

static cel_node *parse_or(parser *p) {
  cel_node *e = parse_and(p);
  while (e && p->tok.kind == T_OR) {
    uint32_t offset = p->tok.offset;
    if (!advance(p)) return NULL;
    cel_node *r = parse_and(p);
    e = r ? binary(p, N_OR, 0, offset, e, r) : NULL;
  }
  return e;
}

static cel_node *parse_expr(parser *p) {
  if (++p->depth > CEL_MAX_HEIGHT) {
    cel_diag_set(p->diag, p->tok.offset, "expression is nested too deeply (more than %d levels)",
                 CEL_MAX_HEIGHT);
    return NULL;
  }
  cel_node *e = parse_or(p);
  if (e && p->tok.kind == T_QUESTION) {
    uint32_t offset = p->tok.offset;
    cel_node *then = NULL, *otherwise = NULL;
    if (!advance(p) || !(then = parse_or(p)) || !expect(p, T_COLON, "in '? :'") ||
        !(otherwise = parse_expr(p)))
      return NULL;
    cel_node *n = node_new(p, N_COND, offset);
    if (!n) return NULL;
    n->a = e;
    n->b = then;
    n->c = otherwise;
    e = finish(p, n);
  }
  p->depth--;
  return e;
}

cel_node *cel_parse(const char *src, size_t len, vd_cel_arena *arena, cel_diag *diag) {
  if (len > CEL_MAX_SOURCE) {
    cel_diag_set(diag, 0, "expression is longer than %d bytes", CEL_MAX_SOURCE);
    return NULL;
  }
  size_t bad = vd_utf8_valid_prefix(src, len);
  if (bad != len) {
    cel_diag_set(diag, (uint32_t)bad, "expression is not valid UTF-8");
    return NULL;
  }
  parser p = {.lx = {.src = src, .len = len, .arena = arena, .diag = diag}, .diag = diag};
  if (!advance(&p)) return NULL;
  cel_node *root = parse_expr(&p);
  if (!root) return NULL;
  if (p.tok.kind != T_EOF) {
    cel_diag_set(diag, p.tok.offset, "unexpected %s after the end of the expression",
                 cel_tok_name(p.tok.kind));
    return NULL;
  }
  return root;
}
