#include "vd_json_hint.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static bool starts(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool say(char *out, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(out, size, fmt, ap);
  va_end(ap);
  return true;
}

/* The token jansson quotes in "... near 'TOKEN'" (into tok), or "" (e.g. "near end of file"). */
static void near_token(const char *message, char *tok, size_t size) {
  tok[0] = '\0';
  const char *at = strstr(message, " near '");
  if (!at) return;
  at += strlen(" near '");
  size_t n = strlen(at);
  if (n && at[n - 1] == '\'') n--;
  snprintf(tok, size, "%.*s", (int)n, at);
}

/* The last character before the offending token that is not white space, or 0. The position jansson
 * reports is just past the token. */
static char before_token(const char *text, size_t size, const json_error_t *error,
                         const char *tok) {
  size_t end = (size_t)error->position < size ? (size_t)error->position : size;
  size_t len = strlen(tok);
  size_t i = end >= len ? end - len : 0;
  while (i > 0) {
    char c = text[--i];
    if (!isspace((unsigned char)c)) return c;
  }
  return 0;
}

static bool blank(const char *text, size_t size) {
  for (size_t i = 0; i < size; i++)
    if (!isspace((unsigned char)text[i])) return false;
  return true;
}

static bool is_any(const char *tok, const char *const *words) {
  for (; *words; words++)
    if (strcmp(tok, *words) == 0) return true;
  return false;
}

bool vd_json_error_hint(const char *text, size_t size, const json_error_t *error, char *out,
                        size_t out_size) {
  static const char *const capitalised[] = {"True", "False", "None",  "Null",
                                            "NULL", "TRUE",  "FALSE", NULL};
  static const char *const not_json[] = {"NaN", "Infinity", "-Infinity", "undefined", NULL};
  out[0] = '\0';
  const char *m = error->text;
  char tok[64];
  near_token(m, tok, sizeof tok);
  char prev = before_token(text ? text : "", text ? size : 0, error, tok);
  if (starts(m, "'[' or '{' expected near end of file") && (!text || blank(text, size)))
    return say(out, out_size, "the body is empty");
  if (starts(m, "string or '}' expected")) {
    if (strcmp(tok, "}") == 0) return say(out, out_size, "a trailing comma before '}'?");
    if (tok[0] == '\'') return say(out, out_size, "keys and strings take double quotes, not '");
    return say(out, out_size, "object keys must be strings in double quotes");
  }
  if (starts(m, "unexpected token")) {
    if (prev == ',' && (strcmp(tok, "]") == 0 || strcmp(tok, "}") == 0))
      return say(out, out_size, "a trailing comma before '%s'?", tok);
    if (prev == ':') return say(out, out_size, "a value is missing after ':'");
    if (prev == ',') return say(out, out_size, "a value is missing after ','");
  }
  if (starts(m, "end of file expected")) {
    if (tok[0] == '/') return say(out, out_size, "JSON has no comments");
    if (text && memchr(text, '\0', size)) return say(out, out_size, "a NUL byte in the body");
    return say(out, out_size, "more text after the JSON value (one value per body)");
  }
  if (starts(m, "premature end of input") && tok[0] == '"')
    return say(out, out_size, "an unterminated string (no closing '\"')?");
  if (starts(m, "'}' expected near end of file"))
    return say(out, out_size, "the body ends inside an object: a missing '}', or a cut-off body?");
  if (starts(m, "']' expected near end of file"))
    return say(out, out_size, "the body ends inside an array: a missing ']', or a cut-off body?");
  if (starts(m, "premature end of input") || strstr(m, "near end of file"))
    return say(out, out_size, "the body ends too early: a cut-off body?");
  if (starts(m, "'}' expected")) {
    if (strcmp(tok, "]") == 0) return say(out, out_size, "a ']' closes an object opened with '{'");
    return say(out, out_size, "a missing ',' between members?");
  }
  if (starts(m, "']' expected")) {
    if (strcmp(tok, "}") == 0) return say(out, out_size, "a '}' closes an array opened with '['");
    return say(out, out_size, "a missing ',' between elements?");
  }
  if (starts(m, "':' expected")) return say(out, out_size, "a missing ':' after the key?");
  if (starts(m, "invalid token")) {
    if (is_any(tok, capitalised))
      return say(out, out_size, "JSON's literals are lower case: true, false, null");
    if (is_any(tok, not_json))
      return say(out, out_size, "JSON has no %s: use null or a number", tok);
    if (tok[0] == '\'') return say(out, out_size, "strings take double quotes, not '");
    if (tok[0] == '/') return say(out, out_size, "JSON has no comments");
    if (tok[0] == '.') return say(out, out_size, "a number needs a digit before '.' (0.5)");
    if (tok[0] == '0' && tok[1] == '\0') return say(out, out_size, "numbers have no leading zeros");
    if (tok[0] == '-' || isdigit((unsigned char)tok[0]))
      return say(out, out_size, "an incomplete number");
    if (isalpha((unsigned char)tok[0]))
      return say(out, out_size, "text values must be strings in double quotes");
  }
  if (starts(m, "unexpected newline") || starts(m, "control character"))
    return say(out, out_size,
               "a raw line break or control character inside a string: escape it (\\n, \\t, "
               "\\u0000)");
  if (starts(m, "invalid escape"))
    return say(out, out_size,
               "valid escapes are \\\" \\\\ \\/ \\b \\f \\n \\r \\t and \\u with four hex digits");
  if (starts(m, "duplicate object key"))
    return say(out, out_size, "each key may appear once in an object");
  if (strstr(m, "too big") || strstr(m, "overflow"))
    return say(out, out_size, "numbers must fit a 64-bit integer or a double");
  if (strstr(m, "UTF-8") || strstr(m, "unable to decode byte"))
    return say(out, out_size, "the body must be UTF-8");
  if (strstr(m, "\\u0000")) return say(out, out_size, "strings may not contain NUL characters");
  return false;
}
