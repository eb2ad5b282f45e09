/* cel_lex.c: the CEL lexer — tokens, numeric literals, and string/bytes literals with every
 * escape, raw and triple-quoted forms (cel-spec langdef "Syntax"). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cel_internal.h"

bool cel_diag_set(cel_diag *d, uint32_t offset, const char *fmt, ...) {
  if (d->set) return false; /* keep the first mistake */
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->message, sizeof d->message, fmt, ap);
  va_end(ap);
  d->offset = offset;
  d->set = true;
  return false;
}

const char *cel_tok_name(cel_tok kind) {
  static const char *const names[] = {
      [T_EOF] = "end of input", [T_INT] = "integer",    [T_UINT] = "unsigned integer",
      [T_DOUBLE] = "number",    [T_STRING] = "string",  [T_BYTES] = "bytes",
      [T_IDENT] = "identifier", [T_QIDENT] = "`field`", [T_TRUE] = "'true'",
      [T_FALSE] = "'false'",    [T_NULL] = "'null'",    [T_IN] = "'in'",
      [T_LPAREN] = "'('",       [T_RPAREN] = "')'",     [T_LBRACKET] = "'['",
      [T_RBRACKET] = "']'",     [T_LBRACE] = "'{'",     [T_RBRACE] = "'}'",
      [T_DOT] = "'.'",          [T_COMMA] = "','",      [T_COLON] = "':'",
      [T_QUESTION] = "'?'",     [T_PLUS] = "'+'",       [T_MINUS] = "'-'",
      [T_STAR] = "'*'",         [T_SLASH] = "'/'",      [T_PERCENT] = "'%'",
      [T_BANG] = "'!'",         [T_EQ] = "'=='",        [T_NE] = "'!='",
      [T_LT] = "'<'",           [T_LE] = "'<='",        [T_GT] = "'>'",
      [T_GE] = "'>='",          [T_AND] = "'&&'",       [T_OR] = "'||'",
  };
  return (unsigned)kind < sizeof names / sizeof names[0] && names[kind] ? names[kind] : "?";
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
static int hex_value(char c) {
  return is_digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : c - 'A' + 10;
}
static bool is_ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_ident_char(char c) { return is_ident_start(c) || is_digit(c); }

/* Words CEL reserves: they cannot name anything. */
static bool is_reserved(const char *s, size_t n) {
  static const char *const words[] = {
      "as",  "break", "const",   "continue",  "else",   "for", "function", "if",   "import",
      "let", "loop",  "package", "namespace", "return", "var", "void",     "while"};
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    if (strlen(words[i]) == n && memcmp(words[i], s, n) == 0) return true;
  return false;
}

static size_t utf8_encode(uint32_t cp, char *out) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Reads one escape sequence after the backslash at src[*pos - 1]. Appends its bytes to out. */
static bool lex_escape(cel_lexer *lx, bool bytes, char *out, size_t *o) {
  size_t start = lx->pos - 1;
  if (lx->pos >= lx->len)
    return cel_diag_set(lx->diag, (uint32_t)start, "unfinished escape sequence");
  char c = lx->src[lx->pos++];
  switch (c) {
    case 'a':
      out[(*o)++] = '\a';
      return true;
    case 'b':
      out[(*o)++] = '\b';
      return true;
    case 'f':
      out[(*o)++] = '\f';
      return true;
    case 'n':
      out[(*o)++] = '\n';
      return true;
    case 'r':
      out[(*o)++] = '\r';
      return true;
    case 't':
      out[(*o)++] = '\t';
      return true;
    case 'v':
      out[(*o)++] = '\v';
      return true;
    case '\\':
    case '\'':
    case '"':
    case '`':
    case '?':
      out[(*o)++] = c;
      return true;
    default:
      break;
  }
  uint32_t value = 0;
  int digits;
  if (c == 'x' || c == 'X' || c == 'u' || c == 'U') {
    digits = (c == 'x' || c == 'X') ? 2 : c == 'u' ? 4 : 8;
    if (c == 'u' || c == 'U') {
      if (bytes)
        return cel_diag_set(lx->diag, (uint32_t)start,
                            "\\%c escapes are not allowed in bytes literals", c);
    }
    for (int i = 0; i < digits; i++) {
      if (lx->pos >= lx->len || !is_hex(lx->src[lx->pos]))
        return cel_diag_set(lx->diag, (uint32_t)start, "\\%c needs %d hex digits", c, digits);
      value = value * 16 + (uint32_t)hex_value(lx->src[lx->pos++]);
    }
  } else if (c >= '0' && c <= '3') {
    value = (uint32_t)(c - '0');
    for (int i = 0; i < 2; i++) {
      if (lx->pos >= lx->len || lx->src[lx->pos] < '0' || lx->src[lx->pos] > '7')
        return cel_diag_set(lx->diag, (uint32_t)start,
                            "octal escapes need three digits (\\000-\\377)");
      value = value * 8 + (uint32_t)(lx->src[lx->pos++] - '0');
    }
  } else {
    return cel_diag_set(lx->diag, (uint32_t)start, "invalid escape sequence '\\%c'", c);
  }
  if (bytes && value < 256 && c != 'u' && c != 'U') {
    out[(*o)++] = (char)value;
    return true;
  }
  if (value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF))
    return cel_diag_set(lx->diag, (uint32_t)start, "escape is not a valid Unicode code point");
  *o += utf8_encode(value, out + *o);
  return true;
}

/* A string or bytes literal starting at lx->pos (prefix letters already consumed). */
static bool lex_string(cel_lexer *lx, cel_token *tok, bool raw, bool bytes) {
  char q = lx->src[lx->pos];
  bool triple = lx->pos + 2 < lx->len && lx->src[lx->pos + 1] == q && lx->src[lx->pos + 2] == q;
  lx->pos += triple ? 3 : 1;
  /* Decoded text is never longer than the source text. */
  char *out = vd_cel_arena_alloc(lx->arena, lx->len - lx->pos + 1);
  if (!out) return cel_diag_set(lx->diag, tok->offset, "out of memory");
  size_t o = 0;
  for (;;) {
    if (lx->pos >= lx->len)
      return cel_diag_set(lx->diag, tok->offset, "unterminated string literal");
    char c = lx->src[lx->pos];
    if (c == q) {
      if (!triple) {
        lx->pos++;
        break;
      }
      if (lx->pos + 2 < lx->len && lx->src[lx->pos + 1] == q && lx->src[lx->pos + 2] == q) {
        lx->pos += 3;
        break;
      }
    }
    if (!triple && (c == '\n' || c == '\r'))
      return cel_diag_set(lx->diag, tok->offset,
                          "newline in string literal (use a triple-quoted string or \\n)");
    lx->pos++;
    if (c == '\\' && !raw) {
      if (!lex_escape(lx, bytes, out, &o)) return false;
    } else {
      out[o++] = c;
    }
  }
  out[o] = '\0';
  if (!bytes && !vd_cel_utf8_valid(out, o))
    return cel_diag_set(lx->diag, tok->offset, "string literal is not valid UTF-8");
  tok->kind = bytes ? T_BYTES : T_STRING;
  tok->value = bytes ? vd_cel_bytes(out, o) : vd_cel_string(out, o);
  return true;
}

static bool lex_number(cel_lexer *lx, cel_token *tok) {
  const char *s = lx->src;
  size_t p = lx->pos, start = p;
  if (s[p] == '0' && p + 1 < lx->len && (s[p + 1] == 'x' || s[p + 1] == 'X')) {
    p += 2;
    size_t digits = p;
    uint64_t v = 0;
    bool overflow = false;
    while (p < lx->len && is_hex(s[p])) {
      if (v >> 60) overflow = true;
      v = v * 16 + (uint64_t)hex_value(s[p++]);
    }
    if (p == digits) return cel_diag_set(lx->diag, (uint32_t)start, "hex literal needs digits");
    if (overflow) return cel_diag_set(lx->diag, (uint32_t)start, "integer literal out of range");
    tok->kind = T_INT;
    if (p < lx->len && (s[p] == 'u' || s[p] == 'U')) {
      p++;
      tok->kind = T_UINT;
    }
    tok->value = vd_cel_uint(v);
    lx->pos = p;
    return true;
  }
  while (p < lx->len && is_digit(s[p])) p++;
  bool is_float = false;
  if (p + 1 < lx->len && s[p] == '.' && is_digit(s[p + 1])) {
    is_float = true;
    p++;
    while (p < lx->len && is_digit(s[p])) p++;
  }
  if (p < lx->len && (s[p] == 'e' || s[p] == 'E')) {
    size_t e = p + 1;
    if (e < lx->len && (s[e] == '+' || s[e] == '-')) e++;
    if (e < lx->len && is_digit(s[e])) {
      is_float = true;
      p = e;
      while (p < lx->len && is_digit(s[p])) p++;
    } else {
      return cel_diag_set(lx->diag, (uint32_t)start, "exponent needs digits");
    }
  }
  char buf[128];
  size_t n = p - start;
  if (n >= sizeof buf) return cel_diag_set(lx->diag, (uint32_t)start, "numeric literal too long");
  memcpy(buf, s + start, n);
  buf[n] = '\0';
  if (is_float) {
    tok->kind = T_DOUBLE;
    tok->value = vd_cel_double(strtod(buf, NULL));
  } else {
    errno = 0;
    unsigned long long v = strtoull(buf, NULL, 10);
    if (errno) return cel_diag_set(lx->diag, (uint32_t)start, "integer literal out of range");
    tok->kind = T_INT;
    if (p < lx->len && (s[p] == 'u' || s[p] == 'U')) {
      p++;
      tok->kind = T_UINT;
    }
    tok->value = vd_cel_uint(v);
  }
  if (p < lx->len && (is_ident_char(s[p]) || s[p] == '.') && !(s[p] == '.' && !is_float))
    return cel_diag_set(lx->diag, (uint32_t)start, "malformed number");
  lx->pos = p;
  return true;
}

static bool lex_ident(cel_lexer *lx, cel_token *tok) {
  size_t p = lx->pos;
  while (p < lx->len && is_ident_char(lx->src[p])) p++;
  const char *s = lx->src + lx->pos;
  size_t n = p - lx->pos;
  /* String prefixes: r, b, rb, br in any case, directly followed by a quote. */
  if (n <= 2 && p < lx->len && (lx->src[p] == '\'' || lx->src[p] == '"')) {
    bool raw = false, bytes = false, ok = true;
    for (size_t i = 0; i < n; i++) {
      char c = s[i];
      if ((c == 'r' || c == 'R') && !raw)
        raw = true;
      else if ((c == 'b' || c == 'B') && !bytes)
        bytes = true;
      else
        ok = false;
    }
    if (ok) {
      lx->pos = p;
      return lex_string(lx, tok, raw, bytes);
    }
  }
  lx->pos = p;
  if (n == 4 && memcmp(s, "true", 4) == 0) {
    tok->kind = T_TRUE;
    tok->value = vd_cel_bool(true);
  } else if (n == 5 && memcmp(s, "false", 5) == 0) {
    tok->kind = T_FALSE;
    tok->value = vd_cel_bool(false);
  } else if (n == 4 && memcmp(s, "null", 4) == 0) {
    tok->kind = T_NULL;
    tok->value = vd_cel_null();
  } else if (n == 2 && memcmp(s, "in", 2) == 0) {
    tok->kind = T_IN;
  } else {
    if (is_reserved(s, n))
      return cel_diag_set(lx->diag, tok->offset, "'%.*s' is a reserved word", (int)n, s);
    tok->kind = T_IDENT;
    tok->text = cel_arena_strndup(lx->arena, s, n);
    if (!tok->text) return cel_diag_set(lx->diag, tok->offset, "out of memory");
  }
  return true;
}

static bool lex_quoted_ident(cel_lexer *lx, cel_token *tok) {
  size_t p = lx->pos + 1, start = p;
  while (p < lx->len && lx->src[p] != '`') {
    char c = lx->src[p];
    if (!(is_ident_char(c) || c == '.' || c == '-' || c == '/' || c == ' '))
      return cel_diag_set(lx->diag, tok->offset,
                          "character '%c' is not allowed in a `quoted` field name", c);
    p++;
  }
  if (p >= lx->len || p == start)
    return cel_diag_set(lx->diag, tok->offset, "unterminated or empty `quoted` field name");
  tok->kind = T_QIDENT;
  tok->text = cel_arena_strndup(lx->arena, lx->src + start, p - start);
  if (!tok->text) return cel_diag_set(lx->diag, tok->offset, "out of memory");
  lx->pos = p + 1;
  return true;
}

bool cel_lex_next(cel_lexer *lx, cel_token *tok) {
  const char *s = lx->src;
  for (;;) { /* whitespace and // comments */
    while (lx->pos < lx->len && (s[lx->pos] == ' ' || s[lx->pos] == '\t' || s[lx->pos] == '\n' ||
                                 s[lx->pos] == '\r' || s[lx->pos] == '\f'))
      lx->pos++;
    if (lx->pos + 1 < lx->len && s[lx->pos] == '/' && s[lx->pos + 1] == '/') {
      while (lx->pos < lx->len && s[lx->pos] != '\n') lx->pos++;
      continue;
    }
    break;
  }
  memset(tok, 0, sizeof *tok);
  tok->offset = (uint32_t)lx->pos;
  if (lx->pos >= lx->len) {
    tok->kind = T_EOF;
    return true;
  }
  char c = s[lx->pos], n = lx->pos + 1 < lx->len ? s[lx->pos + 1] : '\0';
  bool ok = true;
  size_t width = 1;
  switch (c) {
    case '(':
      tok->kind = T_LPAREN;
      break;
    case ')':
      tok->kind = T_RPAREN;
      break;
    case '[':
      tok->kind = T_LBRACKET;
      break;
    case ']':
      tok->kind = T_RBRACKET;
      break;
    case '{':
      tok->kind = T_LBRACE;
      break;
    case '}':
      tok->kind = T_RBRACE;
      break;
    case ',':
      tok->kind = T_COMMA;
      break;
    case ':':
      tok->kind = T_COLON;
      break;
    case '?':
      tok->kind = T_QUESTION;
      break;
    case '+':
      tok->kind = T_PLUS;
      break;
    case '-':
      tok->kind = T_MINUS;
      break;
    case '*':
      tok->kind = T_STAR;
      break;
    case '/':
      tok->kind = T_SLASH;
      break;
    case '%':
      tok->kind = T_PERCENT;
      break;
    case '!':
      tok->kind = n == '=' ? T_NE : T_BANG;
      width = n == '=' ? 2 : 1;
      break;
    case '=':
      if (n != '=') return cel_diag_set(lx->diag, tok->offset, "'=' is not an operator (use '==')");
      tok->kind = T_EQ;
      width = 2;
      break;
    case '<':
      tok->kind = n == '=' ? T_LE : T_LT;
      width = n == '=' ? 2 : 1;
      break;
    case '>':
      tok->kind = n == '=' ? T_GE : T_GT;
      width = n == '=' ? 2 : 1;
      break;
    case '&':
      if (n != '&') return cel_diag_set(lx->diag, tok->offset, "'&' is not an operator (use '&&')");
      tok->kind = T_AND;
      width = 2;
      break;
    case '|':
      if (n != '|') return cel_diag_set(lx->diag, tok->offset, "'|' is not an operator (use '||')");
      tok->kind = T_OR;
      width = 2;
      break;
    case '.':
      if (is_digit(n)) {
        ok = lex_number(lx, tok);
        width = 0;
      } else {
        tok->kind = T_DOT;
      }
      break;
    case '\'':
    case '"':
      ok = lex_string(lx, tok, false, false);
      width = 0;
      break;
    case '`':
      ok = lex_quoted_ident(lx, tok);
      width = 0;
      break;
    default:
      width = 0;
      if (is_digit(c))
        ok = lex_number(lx, tok);
      else if (is_ident_start(c))
        ok = lex_ident(lx, tok);
      else if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7F)
        return cel_diag_set(lx->diag, tok->offset, "unexpected character '%c'", c);
      else
        return cel_diag_set(lx->diag, tok->offset, "unexpected character (byte 0x%02x)",
                            (unsigned char)c);
  }
  lx->pos += width;
  tok->len = (uint32_t)(lx->pos - tok->offset);
  return ok;
}
