/* Unit tests for the CEL subset: lexer, parser, checker (with error positions), evaluator,
 * time and time zones, JSON conversions, slot reads and concurrent evaluation. */
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cel_internal.h"
#include "vd_cel.h"
#include "vd_test.h"

/* ---- a small rule-like environment ---- */

enum {
  S_RECENCY,
  S_COUNTRY,
  S_TAGS,
  S_OPT_OUT,
  S_UPLIFT,
  S_MISSING,
  S_M,
  S_D,
  S_NOW,
  S_AB,
  S_ABC,
  S_COUNT
};

typedef struct fixture {
  vd_cel_env *env;
  vd_cel_value slots[S_COUNT];
  vd_cel_list tags;
  vd_cel_value tag_items[2];
  vd_cel_map m, ab;
  vd_cel_value m_kv[4], ab_kv[2];
} fixture;

static void declare(vd_cel_env *env, const char *name, const vd_cel_type *t, size_t want) {
  size_t slot;
  vd_error err;
  ck_assert_msg(vd_cel_env_declare(env, name, t, &slot, &err), "%s", err.message);
  ck_assert_uint_eq(slot, want);
}

static void fixture_init(fixture *f) {
  memset(f, 0, sizeof *f);
  f->env = vd_cel_env_new();
  vd_cel_env *e = f->env;
  declare(e, "subject.recency", vd_cel_type_of_kind(VD_CEL_INT), S_RECENCY);
  declare(e, "subject.country", vd_cel_type_of_kind(VD_CEL_STRING), S_COUNTRY);
  declare(e, "subject.tags", vd_cel_type_list(e, vd_cel_type_of_kind(VD_CEL_STRING)), S_TAGS);
  declare(e, "subject.opt_out", vd_cel_type_of_kind(VD_CEL_BOOL), S_OPT_OUT);
  declare(e, "score.uplift", vd_cel_type_of_kind(VD_CEL_DOUBLE), S_UPLIFT);
  declare(e, "subject.missing", vd_cel_type_of_kind(VD_CEL_INT), S_MISSING);
  declare(e, "m",
          vd_cel_type_map(e, vd_cel_type_of_kind(VD_CEL_STRING), vd_cel_type_of_kind(VD_CEL_INT)),
          S_M);
  declare(e, "d", vd_cel_type_dyn(), S_D);
  declare(e, "now", vd_cel_type_of_kind(VD_CEL_TIMESTAMP), S_NOW);
  declare(e, "a.b", vd_cel_type_map(e, vd_cel_type_of_kind(VD_CEL_STRING), vd_cel_type_dyn()),
          S_AB);
  declare(e, "a.b.c", vd_cel_type_of_kind(VD_CEL_STRING), S_ABC);
  f->slots[S_RECENCY] = vd_cel_int(3);
  f->slots[S_COUNTRY] = vd_cel_string("US", 2);
  f->tag_items[0] = vd_cel_string("vip-gold", 8);
  f->tag_items[1] = vd_cel_string("new", 3);
  f->tags = (vd_cel_list){2, f->tag_items};
  f->slots[S_TAGS] = vd_cel_list_value(&f->tags);
  f->slots[S_OPT_OUT] = vd_cel_bool(false);
  f->slots[S_UPLIFT] = vd_cel_double(0.01);
  f->slots[S_MISSING] = (vd_cel_value){.kind = VD_CEL_UNSET};
  f->m_kv[0] = vd_cel_string("a", 1);
  f->m_kv[1] = vd_cel_string("b", 1);
  f->m_kv[2] = vd_cel_int(1);
  f->m_kv[3] = vd_cel_int(2);
  f->m = (vd_cel_map){2, f->m_kv, f->m_kv + 2};
  f->slots[S_M] = vd_cel_map_value(&f->m);
  f->slots[S_D] = vd_cel_int(7);
  vd_error err;
  ck_assert(vd_cel_timestamp_parse("2026-12-03T13:26:45Z", 20, &f->slots[S_NOW], &err));
  f->ab_kv[0] = vd_cel_string("c", 1);
  f->ab_kv[1] = vd_cel_string("oops", 4);
  f->ab = (vd_cel_map){1, f->ab_kv, f->ab_kv + 1};
  f->slots[S_AB] = vd_cel_map_value(&f->ab);
  f->slots[S_ABC] = vd_cel_string("yeah", 4);
}

/* Compiles and evaluates expr; returns a malloc'd description: the typed JSON result,
 * "error: MESSAGE", or "compile L:C: MESSAGE". */
static char *run(const char *expr) {
  fixture f;
  fixture_init(&f);
  vd_error err;
  char out[2048];
  vd_cel_program *p = vd_cel_compile(f.env, expr, strlen(expr), NULL, &err);
  if (!p) {
    snprintf(out, sizeof out, "compile %d:%d: %s", err.line, err.column, err.message);
  } else {
    unsigned char scratch[4096];
    vd_cel_arena arena;
    vd_cel_arena_init(&arena, scratch, sizeof scratch);
    vd_cel_value r;
    if (vd_cel_eval(p, f.slots, S_COUNT, &arena, &r, NULL, NULL)) {
      json_t *j = vd_cel_to_typed_json(&r);
      char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
      snprintf(out, sizeof out, "%s", s);
      free(s);
      json_decref(j);
    } else {
      snprintf(out, sizeof out, "error: %s", r.v.error.message);
    }
    vd_cel_arena_free(&arena);
    vd_cel_program_free(p);
  }
  vd_cel_env_free(f.env);
  return strdup(out);
}

#define EXPECT(expr, want)                                                                  \
  do {                                                                                      \
    char *got_ = run(expr);                                                                 \
    ck_assert_msg(strcmp(got_, want) == 0, "%s\n  got:  %s\n  want: %s", expr, got_, want); \
    free(got_);                                                                             \
  } while (0)

/* want is a prefix (for error messages). */
#define EXPECT_PREFIX(expr, want)                                                                \
  do {                                                                                           \
    char *got_ = run(expr);                                                                      \
    ck_assert_msg(strncmp(got_, want, strlen(want)) == 0, "%s\n  got:  %s\n  want: %s...", expr, \
                  got_, want);                                                                   \
    free(got_);                                                                                  \
  } while (0)

#define INT(v) "{\"type\":\"int\",\"value\":" #v "}"
#define BOOL(v) "{\"type\":\"bool\",\"value\":" #v "}"
#define STR(v) "{\"type\":\"string\",\"value\":\"" v "\"}"
#define TRUE_ BOOL(true)
#define FALSE_ BOOL(false)

/* ---- lexer ---- */

static int lex_all(const char *src, cel_token *toks, int max, cel_diag *diag) {
  vd_cel_arena arena;
  static unsigned char scratch[65536];
  vd_cel_arena_init(&arena, scratch, sizeof scratch);
  cel_lexer lx = {.src = src, .len = strlen(src), .arena = &arena, .diag = diag};
  int n = 0;
  while (n < max) {
    if (!cel_lex_next(&lx, &toks[n])) return -1;
    if (toks[n++].kind == T_EOF) break;
  }
  return n;
}

START_TEST(lexer_tokens_and_offsets) {
  cel_token t[16];
  cel_diag d = {.set = false};
  int n = lex_all("a.b >= 1.5e3 && 'x' // comment\n|| 0x1Fu", t, 16, &d);
  ck_assert_int_eq(n, 10);
  cel_tok kinds[] = {T_IDENT, T_DOT, T_IDENT, T_GE, T_DOUBLE, T_AND, T_STRING, T_OR, T_UINT, T_EOF};
  for (int i = 0; i < n; i++) ck_assert_int_eq(t[i].kind, kinds[i]);
  ck_assert_uint_eq(t[3].offset, 4);
  ck_assert_uint_eq(t[4].offset, 7);
  ck_assert(t[4].value.v.d == 1500.0);
  ck_assert_uint_eq(t[7].offset, 31);
  ck_assert_uint_eq(t[8].value.v.u, 31);
}
END_TEST

START_TEST(lexer_string_escapes) {
  cel_token t[4];
  cel_diag d = {.set = false};
  ck_assert_int_eq(lex_all("'\\u00e9\\101\\x41\\n\\\\'", t, 4, &d), 2);
  ck_assert_uint_eq(t[0].value.v.str.len, 6);
  ck_assert(memcmp(t[0].value.v.str.data,
                   "\xc3\xa9"
                   "AA\n\\",
                   6) == 0);
  ck_assert_int_eq(lex_all("r'\\d+'", t, 4, &d), 2); /* raw: backslash kept */
  ck_assert_uint_eq(t[0].value.v.str.len, 3);
  ck_assert_int_eq(lex_all("b'\\xff\\000'", t, 4, &d), 2);
  ck_assert_int_eq(t[0].kind, T_BYTES);
  ck_assert_uint_eq(t[0].value.v.str.len, 2);
  ck_assert_int_eq(lex_all("'''a\n'b'''", t, 4, &d), 2);
  ck_assert_uint_eq(t[0].value.v.str.len, 4);
}
END_TEST

START_TEST(lexer_errors) {
  cel_token t[8];
  struct {
    const char *src, *msg;
    uint32_t offset;
  } cases[] = {
      {"1 + 'abc", "unterminated string literal", 4},
      {"'a\\qb'", "invalid escape sequence '\\q'", 2},
      {"'\\uD800'", "escape is not a valid Unicode code point", 1},
      {"b'\\u00e9'", "\\u escapes are not allowed in bytes literals", 2},
      {"'a\nb'", "newline in string literal", 0},
      {"x = 1", "'=' is not an operator (use '==')", 2},
      {"1 & 2", "'&' is not an operator (use '&&')", 2},
      {"12abc", "malformed number", 0},
      {"1e", "exponent needs digits", 0},
      {"if", "'if' is a reserved word", 0},
      {"a # b", "unexpected character '#'", 2},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cel_diag d = {.set = false};
    ck_assert_msg(lex_all(cases[i].src, t, 8, &d) < 0, "%s lexed", cases[i].src);
    ck_assert_msg(strncmp(d.message, cases[i].msg, strlen(cases[i].msg)) == 0, "%s: %s",
                  cases[i].src, d.message);
    ck_assert_msg(d.offset == cases[i].offset, "%s: offset %u", cases[i].src, d.offset);
  }
}
END_TEST

/* ---- parser ---- */

START_TEST(parser_precedence_and_literals) {
  EXPECT("1 + 2 * 3", INT(7));
  EXPECT("(1 + 2) * 3", INT(9));
  EXPECT("10 - 4 - 3", INT(3));
  EXPECT("-2 * 3", INT(-6));
  EXPECT("!true || true", TRUE_);
  EXPECT("1 < 2 == true", TRUE_);
  EXPECT("true ? 1 : false ? 2 : 3", INT(1));
  EXPECT("false ? 1 : false ? 2 : 3", INT(3));
  EXPECT("-9223372036854775808", INT(-9223372036854775808));
  EXPECT("18446744073709551615u", "{\"type\":\"uint\",\"value\":\"18446744073709551615\"}");
  EXPECT("[1, 2,][1]", INT(2));
  EXPECT("{'a': 1,}.a", INT(1));
  EXPECT("0x10 + 010", INT(26));
  EXPECT(".5 + 1.0", "{\"type\":\"double\",\"value\":1.5}");
  EXPECT("'''x\ny'''", STR("x\\ny"));
}
END_TEST

START_TEST(parser_errors_with_positions) {
  EXPECT("1 +", "compile 1:4: unexpected end of expression");
  EXPECT("1 + (2", "compile 1:7: expected ')' to close '(', found end of input");
  EXPECT("[1, 2", "compile 1:6: expected ']' to close the list, found end of input");
  EXPECT("subject.recency >\n   >= 3", "compile 2:4: unexpected '>='");
  EXPECT("9223372036854775808", "compile 1:1: integer literal out of range");
  EXPECT("18446744073709551616u", "compile 1:1: integer literal out of range");
  EXPECT("1 2", "compile 1:3: unexpected integer after the end of the expression");
  EXPECT("has(m)", "compile 1:1: has() takes one field selection, like has(m.field)");
  EXPECT("[1].all(1, true)", "compile 1:9: all() needs a variable name as its first argument");
  EXPECT("Foo{a: 1}", "compile 1:4: message construction (Name{field: ...}) is not supported");
  /* the column counts characters, not bytes */
  EXPECT("'é' + 1 +", "compile 1:10: unexpected end of expression");
  char deep[700];
  memset(deep, '(', 300);
  strcpy(deep + 300, "1");
  memset(deep + 301, ')', 300);
  deep[601] = '\0';
  EXPECT_PREFIX(deep, "compile 1:");
  char *got = run(deep);
  ck_assert_msg(strstr(got, "nested too deeply"), "%s", got);
  free(got);
  /* a long prefix-operator chain is refused at its 200th operator, not by a stack overflow */
  enum { CHAIN = 99000 };
  for (int op = 0; op < 2; op++) {
    char *chain = malloc(CHAIN + 2);
    memset(chain, op ? '-' : '!', CHAIN);
    strcpy(chain + CHAIN, op ? "4" : "b");
    got = run(chain);
    ck_assert_msg(strstr(got, "compile 1:200: expression is nested too deeply"), "%s", got);
    free(got);
    free(chain);
  }
}
END_TEST

/* ---- checker ---- */

static char *type_of(const char *expr) {
  fixture f;
  fixture_init(&f);
  vd_error err;
  vd_cel_program *p = vd_cel_compile(f.env, expr, strlen(expr), NULL, &err);
  char buf[VD_ERROR_MESSAGE_MAX + 16];
  if (p)
    vd_cel_type_format(vd_cel_program_type(p), buf, sizeof buf);
  else
    snprintf(buf, sizeof buf, "error: %s", err.message);
  vd_cel_program_free(p);
  vd_cel_env_free(f.env);
  return strdup(buf);
}

#define EXPECT_TYPE(expr, want)                                                   \
  do {                                                                            \
    char *t_ = type_of(expr);                                                     \
    ck_assert_msg(strcmp(t_, want) == 0, "%s: type %s, want %s", expr, t_, want); \
    free(t_);                                                                     \
  } while (0)

START_TEST(checker_types) {
  EXPECT_TYPE("subject.recency > 1", "bool");
  EXPECT_TYPE("[1, 2]", "list(int)");
  EXPECT_TYPE("[1, 'a']", "list(dyn)");
  EXPECT_TYPE("{'a': 1}", "map(string, int)");
  EXPECT_TYPE("subject.tags.map(t, size(t))", "list(int)");
  EXPECT_TYPE("subject.tags.filter(t, t != '')", "list(string)");
  EXPECT_TYPE("m.a", "int");
  EXPECT_TYPE("d.anything", "dyn");
  EXPECT_TYPE("now - duration('1h')", "google.protobuf.Timestamp");
  EXPECT_TYPE("now - now", "google.protobuf.Duration");
  EXPECT_TYPE("a.b.c", "string"); /* the longest declared name wins */
}
END_TEST

START_TEST(checker_errors_with_positions) {
  EXPECT("subject.recncy > 3", "compile 1:1: undeclared reference to 'subject'");
  EXPECT("subject.recency + 'a'", "compile 1:17: no operator '+' for (int, string)");
  EXPECT_PREFIX("subject.recency * score.uplift",
                "compile 1:17: no operator '*' for (int, double) (CEL does not mix");
  EXPECT("subject.recency.foo", "compile 1:17: type int has no field 'foo'");
  EXPECT("subject.tags['x']", "compile 1:14: a list index must be int, not string");
  EXPECT("subject.country == 1", "compile 1:17: no operator '==' for (string, int)");
  EXPECT("subject.opt_out && subject.recency", "compile 1:20: '&&' needs bool operands, not int");
  EXPECT("!subject.country", "compile 1:1: '!' needs a bool, not string");
  EXPECT("frobnicate(1)", "compile 1:1: unknown function 'frobnicate'");
  EXPECT("subject.country.contains(1)", "compile 1:17: 'contains' needs strings, not int");
  EXPECT("size(1)", "compile 1:1: size() is not defined for int");
  EXPECT("subject.recency.all(x, x)",
         "compile 1:17: cannot iterate over int (a list or map is needed)");
  EXPECT("subject.tags.all(t, t)", "compile 1:21: the condition must be bool, not string");
  EXPECT_PREFIX("timestamp('2026-13-01T00:00:00Z')", "compile 1:11: '2026-13-01T00:00:00Z' is not");
  EXPECT_PREFIX("duration('1x')", "compile 1:10: '1x' is not a duration");
  EXPECT_PREFIX("'a'.matches('(')", "compile 1:13: invalid regular expression");
  EXPECT_PREFIX("now.getHours('Mars/Olympus')", "compile 1:14: time zone: unknown time zone");
  EXPECT("{1.5: 2}", "compile 1:2: map keys must be bool, int, uint or string, not double");
  EXPECT("subject.opt_out ? 1 :\n  subject.recency.x", "compile 2:19: type int has no field 'x'");
}
END_TEST

START_TEST(env_declarations) {
  vd_cel_env *env = vd_cel_env_new();
  vd_error err;
  size_t slot;
  ck_assert(vd_cel_env_declare(env, "subject.recency", vd_cel_type_dyn(), &slot, &err));
  ck_assert(!vd_cel_env_declare(env, "subject.recency", vd_cel_type_dyn(), &slot, &err));
  ck_assert_str_eq(err.message, "variable 'subject.recency' is declared twice");
  ck_assert(!vd_cel_env_declare(env, "subject..x", vd_cel_type_dyn(), &slot, &err));
  ck_assert(!vd_cel_env_declare(env, "1x", vd_cel_type_dyn(), &slot, &err));
  ck_assert(vd_cel_env_lookup(env, "subject.recency", &slot) && slot == 0);
  ck_assert_str_eq(vd_cel_env_slot_name(env, 0), "subject.recency");
  ck_assert_uint_eq(vd_cel_env_slot_count(env), 1);
  vd_cel_env_free(env);
}
END_TEST

/* ---- evaluator ---- */

START_TEST(eval_arithmetic_and_errors) {
  EXPECT("9223372036854775807 + 1", "error: integer overflow");
  EXPECT("-9223372036854775808 / -1", "error: integer overflow");
  EXPECT("-9223372036854775808 % -1", INT(0));
  EXPECT("7 / 0", "error: division by zero");
  EXPECT("7 % 0", "error: modulus by zero");
  EXPECT("0u - 1u", "error: unsigned integer overflow");
  EXPECT("-7 / 2", INT(-3));
  EXPECT("-7 % 2", INT(-1));
  EXPECT("1.0 / 0.0", "{\"type\":\"double\",\"value\":\"Infinity\"}");
  EXPECT("'ab' + 'cd'", STR("abcd"));
  EXPECT("[1] + [2, 3]", "{\"type\":\"list\",\"value\":[" INT(1) "," INT(2) "," INT(3) "]}");
  EXPECT("dyn(1) + 1.0", "error: no such overload: int + double");
  EXPECT("dyn(1) == 1.0", TRUE_);
  EXPECT("dyn(1) < 1.5", TRUE_);
  EXPECT("dyn('a') < 1", "error: no such overload: string < int");
}
END_TEST

START_TEST(eval_logic_absorbs_errors) {
  EXPECT("false && (1 / 0 == 1)", FALSE_);
  EXPECT("(1 / 0 == 1) && false", FALSE_);
  EXPECT("(1 / 0 == 1) || true", TRUE_);
  EXPECT("(1 / 0 == 1) || false", "error: division by zero");
  EXPECT("subject.missing > 1 || true", TRUE_);
  EXPECT("subject.missing > 1", "error: no value for 'subject.missing'");
  EXPECT("has(subject.missing)", FALSE_);
  EXPECT("has(subject.recency)", TRUE_);
  EXPECT("[1, 0].all(x, 10 / x > 1)", "error: division by zero");
  EXPECT("[0, 1].exists(x, 10 / x > 1)", TRUE_);
  EXPECT("[0, 20].all(x, 10 / x > 1)", FALSE_);
  EXPECT("(1 / 0 == 1) ? 1 : 2", "error: division by zero");
}
END_TEST

START_TEST(eval_rules_like_conditions) {
  EXPECT("subject.recency >= 3 && subject.country == 'US'", TRUE_);
  EXPECT("subject.country in ['US', 'CA'] && !subject.opt_out", TRUE_);
  EXPECT("subject.tags.exists(t, t.startsWith('vip'))", TRUE_);
  EXPECT("subject.tags.exists_one(t, t.contains(''))", FALSE_);
  EXPECT("subject.tags.exists_one(t, t.contains('e'))", TRUE_);
  EXPECT("subject.tags.filter(t, t.endsWith('w'))",
         "{\"type\":\"list\",\"value\":[" STR("new") "]}");
  EXPECT("subject.tags.map(t, t.size(), size(t) > 3)",
         "compile 1:21: the condition must be bool, not int");
  EXPECT("d.map(t, t)", "error: cannot iterate over int (a list or map is needed)");
  EXPECT("subject.tags.map(t, size(t) > 3, size(t))", "{\"type\":\"list\",\"value\":[" INT(8) "]}");
  EXPECT("score.uplift < 0.005", FALSE_);
  EXPECT("m.a + m['b']", INT(3));
  EXPECT("m.zz", "error: no such key: 'zz'");
  EXPECT("has(m.a) && !has(m.zz)", TRUE_);
  EXPECT("'zz' in m", FALSE_);
  EXPECT("subject.tags[2]", "error: index 2 out of range (list size 2)");
  EXPECT("a.b.c", STR("yeah"));
  EXPECT("a.b['c']", STR("oops"));
  EXPECT("d * 6", INT(42));
  EXPECT("{'k': 1, 'k': 2}", "error: repeated map key");
  EXPECT("size('héllo') + size(b'h\\xc3\\xa9')", INT(8));
}
END_TEST

/* A comprehension nest that would take 101^3 steps stops at the step budget. */
START_TEST(eval_step_budget) {
  char list[512] = "[";
  for (int i = 0; i < 101; i++) strcat(list, i ? ",0" : "0");
  strcat(list, "]");
  char src[2048];
  snprintf(src, sizeof src, "%s.all(a, %s.all(b, %s.all(c, true)))", list, list, list);
  EXPECT(src, "error: evaluation exceeded its budget of comprehension steps");
  snprintf(src, sizeof src, "%s.all(a, %s.all(b, true))", list, list);
  EXPECT(src, TRUE_);
}
END_TEST

START_TEST(eval_strings_regex_conversions) {
  EXPECT("'abc'.matches('^a.c$')", TRUE_);
  EXPECT("'ABC'.matches('^a')", FALSE_);
  EXPECT("'ABC'.matches('(?i)^a')", TRUE_);
  EXPECT("'a\\n'.matches('a$')", FALSE_); /* RE2: $ is the very end, not before a newline */
  EXPECT("'a\\n'.matches('(?m)a$')", TRUE_);
  EXPECT("'é'.matches('^.$')", TRUE_);    /* UTF-8 mode: '.' is one character */
  EXPECT("'٣'.matches('\\\\d')", FALSE_); /* \d is ASCII, as in RE2 */
  EXPECT("'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!'.matches('^(a+)+$')",
         "error: regular expression exceeded its match limit");
  EXPECT("'x'.matches(subject.country)", FALSE_);
  EXPECT_PREFIX("'x'.matches(subject.country + '(')", "error: invalid regular expression");
  EXPECT("string(1.5)", STR("1.5"));
  EXPECT("string(1e21)", STR("1e+21"));
  EXPECT("string(0.1)", STR("0.1"));
  EXPECT("string(true)", STR("true"));
  EXPECT("int('12x')", "error: int() cannot parse the string");
  EXPECT("int('-12')", INT(-12));
  EXPECT("uint(-1)", "error: uint() of a negative number");
  EXPECT("double('2.5')", "{\"type\":\"double\",\"value\":2.5}");
  EXPECT("int(-7.9)", INT(-7));
  EXPECT("bool('t')", TRUE_);
  EXPECT("bytes('é')", "{\"type\":\"bytes\",\"value\":\"w6k=\"}");
  EXPECT("type(1) == int && type(subject.tags) == list && type(type) == type", TRUE_);
  EXPECT("type(now)", "{\"type\":\"type\",\"value\":\"google.protobuf.Timestamp\"}");
}
END_TEST

START_TEST(eval_time) {
  EXPECT("now.getFullYear()", INT(2026));
  EXPECT("now.getMonth()", INT(11));
  EXPECT("now.getDate()", INT(3));
  EXPECT("now.getDayOfMonth()", INT(2));
  EXPECT("now.getDayOfYear()", INT(336));
  EXPECT("now.getDayOfWeek()", INT(4)); /* a Thursday */
  EXPECT("now.getHours()", INT(13));
  EXPECT("now.getMinutes()", INT(26));
  EXPECT("now.getSeconds()", INT(45));
  EXPECT("timestamp('2026-12-03T13:26:45.123456Z').getMilliseconds()", INT(123));
  EXPECT("timestamp('2026-01-01T00:00:00Z') + duration('36h')",
         "{\"type\":\"timestamp\",\"value\":\"2026-01-02T12:00:00Z\"}");
  EXPECT("timestamp('2026-01-01T00:00:00+02:00')",
         "{\"type\":\"timestamp\",\"value\":\"2025-12-31T22:00:00Z\"}");
  EXPECT("now - timestamp('2026-12-03T12:00:00Z')", "{\"type\":\"duration\",\"value\":\"5205s\"}");
  EXPECT("duration('-1.5s')", "{\"type\":\"duration\",\"value\":\"-1.5s\"}");
  EXPECT("duration('1h30m').getMinutes()", INT(90));
  EXPECT("duration('1.5s').getMilliseconds()", INT(1500));
  EXPECT("now - duration('24h') < now", TRUE_);
  EXPECT("now > timestamp('2026-01-01T00:00:00Z')", TRUE_);
  EXPECT("string(now)", STR("2026-12-03T13:26:45Z"));
  EXPECT("int(now)", INT(1796304405));
  EXPECT("timestamp('9999-12-31T23:59:59Z') + duration('1s')", "error: timestamp out of range");
  EXPECT("duration('87600000h') + duration('87600000h')", "error: duration out of range");
}
END_TEST

START_TEST(eval_time_zones) {
  /* from the tz database's transitions */
  EXPECT("timestamp('2026-07-01T12:00:00Z').getHours('Europe/Berlin')", INT(14));
  EXPECT("timestamp('2026-01-15T12:00:00Z').getHours('America/New_York')", INT(7));
  EXPECT("timestamp('2024-03-10T09:59:59Z').getHours('America/Los_Angeles')", INT(1));
  EXPECT("timestamp('2024-03-10T10:00:00Z').getHours('America/Los_Angeles')", INT(3));
  /* beyond the last transition: the zone's POSIX rule */
  EXPECT("timestamp('2040-07-01T12:00:00Z').getHours('America/New_York')", INT(8));
  EXPECT("timestamp('2040-01-15T12:00:00Z').getHours('America/New_York')", INT(7));
  EXPECT("timestamp('2040-01-15T00:00:00Z').getHours('Australia/Sydney')", INT(11));
  EXPECT("timestamp('2040-07-01T00:00:00Z').getHours('Australia/Sydney')", INT(10));
  /* fixed offsets and UTC; the date can change */
  EXPECT("timestamp('2026-07-01T20:00:00Z').getMinutes('+05:30')", INT(30));
  EXPECT("timestamp('2026-07-01T20:00:00Z').getDate('+05:30')", INT(2));
  EXPECT("timestamp('2026-07-01T02:00:00Z').getDayOfWeek('-08:00')", INT(2));
  EXPECT("now.getHours('UTC')", INT(13));
  /* a zone without transitions: only its POSIX rule (Etc/GMT+5 is UTC-5) */
  EXPECT("timestamp('2026-07-01T12:00:00Z').getHours('Etc/GMT+5')", INT(7));
  EXPECT_PREFIX("now.getHours('')", "compile 1:14: time zone: not a time-zone name");
  EXPECT_PREFIX("now.getHours('../../etc/passwd')",
                "compile 1:14: time zone: not a time-zone name");
  /* a zone computed at run time */
  EXPECT("now.getHours(subject.country == 'US' ? 'America/Chicago' : 'UTC')", INT(7));
  EXPECT_PREFIX("now.getHours(subject.country + '/../etc/passwd')",
                "error: time zone 'US/../etc/passwd': not a time-zone name");
}
END_TEST

/* ---- slot reads ---- */

START_TEST(eval_reports_reads) {
  fixture f;
  fixture_init(&f);
  vd_error err;
  const char *src = "subject.recency > 100 && subject.country == 'US' || subject.recency < 0";
  vd_cel_program *p = vd_cel_compile(f.env, src, strlen(src), NULL, &err);
  ck_assert_ptr_nonnull(p);
  ck_assert_uint_eq(vd_cel_program_ref_count(p), 2);
  ck_assert_uint_eq(vd_cel_program_refs(p)[0], S_RECENCY);
  ck_assert_uint_eq(vd_cel_program_refs(p)[1], S_COUNTRY);
  size_t reads[2], nreads;
  vd_cel_arena arena;
  vd_cel_arena_init(&arena, NULL, 0);
  vd_cel_value r;
  ck_assert(vd_cel_eval(p, f.slots, S_COUNT, &arena, &r, reads, &nreads));
  ck_assert_uint_eq(nreads, 1); /* the && short-circuits; recency is read twice, listed once */
  ck_assert_uint_eq(reads[0], S_RECENCY);
  f.slots[S_RECENCY] = vd_cel_int(200);
  ck_assert(vd_cel_eval(p, f.slots, S_COUNT, &arena, &r, reads, &nreads));
  ck_assert_uint_eq(nreads, 2);
  ck_assert_uint_eq(reads[1], S_COUNTRY);
  ck_assert(r.kind == VD_CEL_BOOL && r.v.b);
  vd_cel_program_free(p);
  vd_cel_env_free(f.env);
}
END_TEST

/* ---- JSON ---- */

START_TEST(typed_json_round_trip) {
  const char *text =
      "{\"type\":\"map\",\"value\":[[{\"type\":\"string\",\"value\":\"k\"},{\"type\":\"list\","
      "\"value\":[{\"type\":\"bytes\",\"value\":\"/28=\"},{\"type\":\"uint\",\"value\":"
      "\"18446744073709551615\"},{\"type\":\"double\",\"value\":\"NaN\"},{\"type\":\"null\","
      "\"value\":null},{\"type\":\"timestamp\",\"value\":\"2026-12-03T13:26:45.5Z\"},{\"type\":"
      "\"duration\",\"value\":\"90s\"},{\"type\":\"type\",\"value\":\"int\"}]}]]}";
  json_t *j = json_loads(text, 0, NULL);
  vd_cel_arena arena;
  vd_cel_arena_init(&arena, NULL, 0);
  vd_cel_value v;
  vd_error err;
  ck_assert_msg(vd_cel_from_typed_json(j, &arena, &v, &err), "%s", err.message);
  json_t *back = vd_cel_to_typed_json(&v);
  char *s = json_dumps(back, JSON_COMPACT | JSON_PRESERVE_ORDER);
  ck_assert_str_eq(s, text);
  free(s);
  json_decref(back);
  json_decref(j);
  j = json_loads("{\"type\":\"list\",\"value\":[{\"type\":\"int\",\"value\":\"x\"}]}", 0, NULL);
  ck_assert(!vd_cel_from_typed_json(j, &arena, &v, &err));
  ck_assert_str_eq(err.field, "[0]");
  ck_assert_str_eq(err.message, "int value must be an integer");
  json_decref(j);
  vd_cel_arena_free(&arena);
}
END_TEST

START_TEST(plain_json) {
  json_t *j = json_loads(
      "{\"id\":\"c1\",\"recency\":3,\"history\":120.5,\"tags\":[\"a\",true,null]}", 0, NULL);
  vd_cel_arena arena;
  vd_cel_arena_init(&arena, NULL, 0);
  vd_cel_value v;
  vd_error err;
  ck_assert(vd_cel_from_json(j, &arena, &v, &err));
  ck_assert_int_eq(v.kind, VD_CEL_MAP);
  ck_assert_uint_eq(v.v.map->count, 4);
  json_t *back = vd_cel_to_json(&v);
  ck_assert(json_equal(back, j));
  json_decref(back);
  json_decref(j);
  vd_cel_value ts;
  ck_assert(vd_cel_timestamp_parse("2026-12-03T13:26:45Z", 20, &ts, &err));
  back = vd_cel_to_json(&ts);
  ck_assert_str_eq(json_string_value(back), "2026-12-03T13:26:45Z");
  json_decref(back);
  vd_cel_arena_free(&arena);
}
END_TEST

START_TEST(time_parsing) {
  vd_cel_value v;
  vd_error err;
  ck_assert(!vd_cel_timestamp_parse("2026-02-29T00:00:00Z", 20, &v, &err));
  ck_assert(vd_cel_timestamp_parse("2024-02-29T00:00:00Z", 20, &v, &err));
  ck_assert(!vd_cel_timestamp_parse("2024-02-29 00:00:00Z", 20, &v, &err));
  ck_assert(!vd_cel_timestamp_parse("0000-01-01T00:00:00Z", 20, &v, &err));
  ck_assert(vd_cel_duration_parse("1h30m", 5, &v, &err));
  ck_assert_int_eq(v.v.time.seconds, 5400);
  ck_assert(vd_cel_duration_parse("-2.25ms", 7, &v, &err));
  ck_assert_int_eq(v.v.time.seconds, 0);
  ck_assert_int_eq(v.v.time.nanos, -2250000);
  ck_assert(vd_cel_duration_parse("0", 1, &v, &err));
  ck_assert(!vd_cel_duration_parse("", 0, &v, &err));
  ck_assert(!vd_cel_duration_parse("1", 1, &v, &err));
  ck_assert(!vd_cel_duration_parse("1d", 2, &v, &err));
}
END_TEST

/* ---- many threads share one program ---- */

typedef struct worker {
  const vd_cel_program *prog;
  const vd_cel_value *slots;
  int64_t sum;
} worker;

static void *work(void *arg) {
  worker *w = arg;
  unsigned char scratch[1024];
  vd_cel_arena arena;
  vd_cel_arena_init(&arena, scratch, sizeof scratch);
  for (int i = 0; i < 20000; i++) {
    vd_cel_value local[S_COUNT];
    memcpy(local, w->slots, sizeof local);
    local[S_RECENCY] = vd_cel_int(i);
    vd_cel_value r;
    vd_cel_eval(w->prog, local, S_COUNT, &arena, &r, NULL, NULL);
    w->sum += r.v.i;
    vd_cel_arena_reset(&arena);
  }
  return NULL;
}

START_TEST(concurrent_evaluation) {
  fixture f;
  fixture_init(&f);
  const char *src =
      "subject.recency % 3 == 0 && subject.country.matches('^U') ? subject.recency : 0";
  vd_cel_program *p = vd_cel_compile(f.env, src, strlen(src), NULL, NULL);
  ck_assert_ptr_nonnull(p);
  worker w[4];
  pthread_t t[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (worker){p, f.slots, 0};
    ck_assert_int_eq(pthread_create(&t[i], NULL, work, &w[i]), 0);
  }
  int64_t want = 0;
  for (int i = 0; i < 20000; i += 3) want += i;
  for (int i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    ck_assert_int_eq(w[i].sum, want);
  }
  vd_cel_program_free(p);
  vd_cel_env_free(f.env);
}
END_TEST

int main(void) {
  Suite *s = suite_create("cel");
  struct {
    const char *name;
    const TTest *tests[8];
  } groups[] = {
      {"lexer", {lexer_tokens_and_offsets, lexer_string_escapes, lexer_errors}},
      {"parser", {parser_precedence_and_literals, parser_errors_with_positions}},
      {"checker", {checker_types, checker_errors_with_positions, env_declarations}},
      {"evaluator",
       {eval_arithmetic_and_errors, eval_logic_absorbs_errors, eval_rules_like_conditions,
        eval_strings_regex_conversions, eval_reports_reads, concurrent_evaluation,
        eval_step_budget}},
      {"time", {eval_time, eval_time_zones, time_parsing}},
      {"json", {typed_json_round_trip, plain_json}},
  };
  for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
    TCase *tc = tcase_create(groups[g].name);
    for (size_t i = 0; i < 8 && groups[g].tests[i]; i++) tcase_add_test(tc, groups[g].tests[i]);
    suite_add_tcase(s, tc);
  }
  return vd_test_run(s);
}
