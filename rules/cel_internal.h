/* cel_internal.h: what the CEL modules (lexer, parser, checker, evaluator, values, time) share.
 * Not part of the public API; everything here is owned by a program's arena unless said otherwise.
 */
#ifndef VD_CEL_INTERNAL_H
#define VD_CEL_INTERNAL_H

#include <stdarg.h>

#include "vd_cel.h"

/* Limits that keep hostile expressions from exhausting the stack or the CPU. */
enum {
  CEL_MAX_SOURCE = 100000,      /* bytes of expression text */
  CEL_MAX_HEIGHT = 200,         /* height of the syntax tree (nesting, operator chains) */
  CEL_MAX_LOCALS = 32,          /* nested comprehensions */
  CEL_MAX_ITERATIONS = 1000000, /* comprehension steps in one evaluation (nesting multiplies) */
  CEL_REGEX_MATCH_LIMIT = 100000,
  CEL_REGEX_DEPTH_LIMIT = 1000,
  CEL_REGEX_HEAP_LIMIT_KB = 1024,
};

/* PCRE2 options that bring it closest to RE2: UTF-8, `$` only at the very end, no \C. */
#define CEL_REGEX_OPTIONS (PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_BACKSLASH_C)

/* ---- types ---- */

enum { CEL_KIND_DYN = 100 }; /* a type kind beside the vd_cel_kind values */

struct vd_cel_type {
  int kind;                /* vd_cel_kind or CEL_KIND_DYN */
  const vd_cel_type *elem; /* LIST: element; MAP: value */
  const vd_cel_type *key;  /* MAP: key */
};

const vd_cel_type *cel_type_new(vd_cel_arena *arena, int kind, const vd_cel_type *key,
                                const vd_cel_type *elem);
bool cel_type_is_dyn(const vd_cel_type *t);

/* ---- tokens ---- */

typedef enum cel_tok {
  T_EOF,
  T_INT, /* value.u = magnitude (may exceed INT64_MAX until the parser sees a minus) */
  T_UINT,
  T_DOUBLE,
  T_STRING,
  T_BYTES,
  T_IDENT,
  T_QIDENT, /* `quoted identifier` (field names only) */
  T_TRUE,
  T_FALSE,
  T_NULL,
  T_IN,
  T_LPAREN,
  T_RPAREN,
  T_LBRACKET,
  T_RBRACKET,
  T_LBRACE,
  T_RBRACE,
  T_DOT,
  T_COMMA,
  T_COLON,
  T_QUESTION,
  T_PLUS,
  T_MINUS,
  T_STAR,
  T_SLASH,
  T_PERCENT,
  T_BANG,
  T_EQ,
  T_NE,
  T_LT,
  T_LE,
  T_GT,
  T_GE,
  T_AND,
  T_OR,
} cel_tok;

typedef struct cel_token {
  cel_tok kind;
  uint32_t offset, len;
  vd_cel_value value; /* literals; STRING/BYTES decoded into the arena */
  const char *text;   /* IDENT/QIDENT: the name (NUL-terminated, in the arena) */
} cel_token;

/* Where a compile error happened: a message and a byte offset. */
typedef struct cel_diag {
  char message[VD_ERROR_MESSAGE_MAX];
  uint32_t offset;
  bool set;
} cel_diag;

bool cel_diag_set(cel_diag *d, uint32_t offset, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

typedef struct cel_lexer {
  const char *src;
  size_t len, pos;
  vd_cel_arena *arena;
  cel_diag *diag;
} cel_lexer;

/* Reads the next token; false (diag set) on a lexical error. */
bool cel_lex_next(cel_lexer *lx, cel_token *tok);
const char *cel_tok_name(cel_tok kind);

/* ---- syntax tree ---- */

typedef enum cel_op {
  N_LIT,
  N_IDENT,  /* name; flag CEL_ABSOLUTE for a leading dot */
  N_SELECT, /* a.name */
  N_INDEX,  /* a[b] */
  N_CALL,   /* name(args) or a.name(args); sub = builtin function after checking */
  N_LIST,   /* args */
  N_MAP,    /* args = k0, v0, k1, v1, ... */
  N_COND,   /* a ? b : c */
  N_AND,
  N_OR,
  N_NOT,
  N_NEG,
  N_BINARY,        /* sub = cel_binop */
  N_HAS,           /* has(a.name): a is the N_SELECT (or an N_SLOT for a declared name) */
  N_COMPREHENSION, /* sub = cel_macro; a = range, b = predicate/transform, c = transform (map with
                      filter); name = variable, local = its depth */
  N_SLOT,          /* declared variable: slot, ref */
  N_LOCAL,         /* comprehension variable at depth `local` */
} cel_op;

typedef enum cel_binop {
  B_ADD,
  B_SUB,
  B_MUL,
  B_DIV,
  B_MOD,
  B_EQ,
  B_NE,
  B_LT,
  B_LE,
  B_GT,
  B_GE,
  B_IN,
} cel_binop;

typedef enum cel_macro { M_ALL, M_EXISTS, M_EXISTS_ONE, M_MAP, M_FILTER } cel_macro;

enum { CEL_ABSOLUTE = 1 };

typedef struct cel_node cel_node;
struct cel_node {
  uint8_t op, sub, flags;
  uint16_t height;
  uint32_t offset;         /* byte offset of the construct in the source */
  const vd_cel_type *type; /* set by the checker */
  vd_cel_value lit;
  const char *name; /* IDENT, SELECT field, CALL function, COMPREHENSION variable */
  cel_node *a, *b, *c;
  cel_node **args;
  uint32_t nargs;
  uint32_t slot, ref, local;
  const void *extra; /* checker-prepared data: a compiled regex, a loaded time zone */
};

/* Parses source into a tree allocated in arena. NULL with diag set on a syntax error. */
cel_node *cel_parse(const char *src, size_t len, vd_cel_arena *arena, cel_diag *diag);

/* ---- programs ---- */

struct vd_cel_program {
  vd_cel_arena arena; /* owns the tree, constants, types and prepared data */
  const char *source; /* copy, NUL-terminated */
  size_t source_len;
  cel_node *root;
  size_t *refs;
  size_t ref_count;
  size_t slot_count;
  void **regexes; /* pcre2_code * to free */
  size_t regex_count, regex_capacity;
  void *match_context; /* pcre2_match_context * with the limits */
};

/* Builtin functions (N_CALL sub). */
typedef enum cel_fn {
  F_UNKNOWN,
  F_SIZE,
  F_CONTAINS,
  F_STARTS_WITH,
  F_ENDS_WITH,
  F_MATCHES,
  F_INT,
  F_UINT,
  F_DOUBLE,
  F_STRING,
  F_BOOL,
  F_BYTES,
  F_TYPE,
  F_DYN,
  F_TIMESTAMP,
  F_DURATION,
  F_GET_FULL_YEAR,
  F_GET_MONTH,
  F_GET_DAY_OF_YEAR,
  F_GET_DAY_OF_MONTH,
  F_GET_DATE,
  F_GET_DAY_OF_WEEK,
  F_GET_HOURS,
  F_GET_MINUTES,
  F_GET_SECONDS,
  F_GET_MILLISECONDS,
} cel_fn;

/* Type-checks and prepares the tree (resolves names to slots, functions to builtins, compiles
 * constant regexes and time zones). False with diag set on a type error. */
bool cel_check(vd_cel_program *program, const vd_cel_env *env, cel_diag *diag);

/* ---- values (cel_value.c) ---- */

/* Three-way comparison of two values of comparable kinds; false when they are not comparable. */
bool cel_compare(const vd_cel_value *a, const vd_cel_value *b, int *order);
/* Index of key in map, or -1. */
long cel_map_find(const vd_cel_map *map, const vd_cel_value *key);
bool cel_is_map_key_kind(vd_cel_kind k);
/* Formats a double as CEL's string() does (shortest round-trip, Go's 'g' style). */
void cel_format_double(double d, char *buf, size_t size);
/* The error message of a failed allocation, as a value. */
vd_cel_value cel_error(const char *message, uint32_t offset);
vd_cel_value cel_errorf(vd_cel_arena *arena, uint32_t offset, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
char *cel_arena_strndup(vd_cel_arena *arena, const char *s, size_t len);

/* ---- time (cel_time.c) ---- */

enum { CEL_MIN_SECONDS = -62135596800LL, CEL_MAX_SECONDS = 253402300799LL };
#define CEL_MAX_DURATION_SECONDS 315576000000LL

typedef struct cel_zone cel_zone;
/* Loads a zone: an IANA name read from the system tz database, "UTC", or a fixed offset
 * "+05:30"/"-08:00". Memory from arena. NULL with *why set when unknown. */
const cel_zone *cel_zone_load(const char *name, size_t len, vd_cel_arena *arena, const char **why);
/* UTC offset in seconds east at instant t (Unix seconds). */
int32_t cel_zone_offset(const cel_zone *zone, int64_t t);
/* Civil fields of a Unix time shifted by offset. */
typedef struct cel_civil {
  int64_t year;
  int month, day, hour, minute, second, yday,
      wday; /* month 1-12, day 1-31, yday 0-365, wday 0=Sun */
} cel_civil;
void cel_civil_from_unix(int64_t t, cel_civil *out);
/* "2009-02-13T23:31:30.5Z" (fraction trimmed). buf >= 40 bytes. */
void cel_format_timestamp(int64_t seconds, int32_t nanos, char *buf, size_t size);
/* "5400s", "1.5s", "-0.000000001s". buf >= 40 bytes. */
void cel_format_duration(int64_t seconds, int32_t nanos, char *buf, size_t size);
bool cel_duration_normalise(__int128 total_nanos, vd_cel_value *out);

#endif
