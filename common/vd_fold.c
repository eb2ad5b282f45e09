#include "vd_fold.h"

#include <stdint.h>
#include <string.h>

#include "vd_utf8.h"

/* Generated from Unicode decompositions (NFKD minus combining marks) plus the letters that have
 * none (ß, æ, ø, ł, đ, þ, œ, ...). "" = no ASCII form (the character becomes a space). */
static const char latin_00c0[400][3] = {
    "A", "A",  "A",  "A",  "A",  "A",  "AE", "C",  "E",  "E",  "E",  "E",  "I",  "I",  "I",  "I",
    "D", "N",  "O",  "O",  "O",  "O",  "O",  "",   "O",  "U",  "U",  "U",  "U",  "Y",  "Th", "ss",
    "a", "a",  "a",  "a",  "a",  "a",  "ae", "c",  "e",  "e",  "e",  "e",  "i",  "i",  "i",  "i",
    "d", "n",  "o",  "o",  "o",  "o",  "o",  "",   "o",  "u",  "u",  "u",  "u",  "y",  "th", "y",
    "A", "a",  "A",  "a",  "A",  "a",  "C",  "c",  "C",  "c",  "C",  "c",  "C",  "c",  "D",  "d",
    "D", "d",  "E",  "e",  "E",  "e",  "E",  "e",  "E",  "e",  "E",  "e",  "G",  "g",  "G",  "g",
    "G", "g",  "G",  "g",  "H",  "h",  "H",  "h",  "I",  "i",  "I",  "i",  "I",  "i",  "I",  "i",
    "I", "i",  "IJ", "ij", "J",  "j",  "K",  "k",  "k",  "L",  "l",  "L",  "l",  "L",  "l",  "L",
    "l", "L",  "l",  "N",  "n",  "N",  "n",  "N",  "n",  "n",  "N",  "n",  "O",  "o",  "O",  "o",
    "O", "o",  "OE", "oe", "R",  "r",  "R",  "r",  "R",  "r",  "S",  "s",  "S",  "s",  "S",  "s",
    "S", "s",  "T",  "t",  "T",  "t",  "T",  "t",  "U",  "u",  "U",  "u",  "U",  "u",  "U",  "u",
    "U", "u",  "U",  "u",  "W",  "w",  "Y",  "y",  "Y",  "Z",  "z",  "Z",  "z",  "Z",  "z",  "s",
    "b", "B",  "",   "",   "",   "",   "",   "C",  "c",  "",   "D",  "",   "",   "",   "",   "",
    "",  "F",  "f",  "G",  "",   "",   "",   "I",  "K",  "k",  "l",  "",   "",   "N",  "n",  "",
    "O", "o",  "",   "",   "P",  "p",  "",   "",   "",   "",   "",   "",   "T",  "t",  "T",  "U",
    "u", "",   "V",  "Y",  "y",  "Z",  "z",  "",   "",   "",   "",   "",   "",   "",   "",   "",
    "",  "",   "",   "",   "DZ", "Dz", "dz", "LJ", "Lj", "lj", "NJ", "Nj", "nj", "A",  "a",  "I",
    "i", "O",  "o",  "U",  "u",  "U",  "u",  "U",  "u",  "U",  "u",  "U",  "u",  "",   "A",  "a",
    "A", "a",  "AE", "ae", "G",  "g",  "G",  "g",  "K",  "k",  "O",  "o",  "O",  "o",  "",   "",
    "j", "DZ", "Dz", "dz", "G",  "g",  "",   "",   "N",  "n",  "A",  "a",  "AE", "ae", "O",  "o",
    "A", "a",  "A",  "a",  "E",  "e",  "E",  "e",  "I",  "i",  "I",  "i",  "O",  "o",  "O",  "o",
    "R", "r",  "R",  "r",  "U",  "u",  "U",  "u",  "S",  "s",  "T",  "t",  "",   "",   "H",  "h",
    "",  "",   "",   "",   "Z",  "z",  "A",  "a",  "E",  "e",  "O",  "o",  "O",  "o",  "O",  "o",
    "O", "o",  "Y",  "y",  "",   "",   "",   "",   "",   "",   "",   "",   "",   "",   "",   "",
    "",  "",   "",   "",   "",   "",   "",   "",   "",   "",   "",   "",   "",   "",   "",   "",
};
static const char latin_1e00[256][3] = {
    "A", "a", "B", "b", "B", "b", "B",  "b", "C", "c", "D", "d", "D", "d", "D", "d", "D", "d", "D",
    "d", "E", "e", "E", "e", "E", "e",  "E", "e", "E", "e", "F", "f", "G", "g", "H", "h", "H", "h",
    "H", "h", "H", "h", "H", "h", "I",  "i", "I", "i", "K", "k", "K", "k", "K", "k", "L", "l", "L",
    "l", "L", "l", "L", "l", "M", "m",  "M", "m", "M", "m", "N", "n", "N", "n", "N", "n", "N", "n",
    "O", "o", "O", "o", "O", "o", "O",  "o", "P", "p", "P", "p", "R", "r", "R", "r", "R", "r", "R",
    "r", "S", "s", "S", "s", "S", "s",  "S", "s", "S", "s", "T", "t", "T", "t", "T", "t", "T", "t",
    "U", "u", "U", "u", "U", "u", "U",  "u", "U", "u", "V", "v", "V", "v", "W", "w", "W", "w", "W",
    "w", "W", "w", "W", "w", "X", "x",  "X", "x", "Y", "y", "Z", "z", "Z", "z", "Z", "z", "h", "t",
    "w", "y", "",  "s", "",  "",  "SS", "",  "A", "a", "A", "a", "A", "a", "A", "a", "A", "a", "A",
    "a", "A", "a", "A", "a", "A", "a",  "A", "a", "A", "a", "A", "a", "E", "e", "E", "e", "E", "e",
    "E", "e", "E", "e", "E", "e", "E",  "e", "E", "e", "I", "i", "I", "i", "O", "o", "O", "o", "O",
    "o", "O", "o", "O", "o", "O", "o",  "O", "o", "O", "o", "O", "o", "O", "o", "O", "o", "O", "o",
    "U", "u", "U", "u", "U", "u", "U",  "u", "U", "u", "U", "u", "U", "u", "Y", "y", "Y", "y", "Y",
    "y", "Y", "y", "",  "",  "",  "",   "",  "",
};

/* The ASCII form of a non-ASCII code point ("" when it has none). */
static const char *ascii_form(uint32_t cp) {
  if (cp >= 0xC0 && cp <= 0x24F) return latin_00c0[cp - 0xC0];
  if (cp >= 0x1E00 && cp <= 0x1EFF) return latin_1e00[cp - 0x1E00];
  switch (cp) {
    case 0x2010:
    case 0x2011:
    case 0x2012:
    case 0x2013:
    case 0x2014:
    case 0x2015:
    case 0x2212:
      return "-";
    case 0x2018:
    case 0x2019:
    case 0x201A:
    case 0x2032:
    case 0x02BC:
      return "'";
    case 0x201C:
    case 0x201D:
    case 0x201E:
    case 0x00AB:
    case 0x00BB:
      return "\"";
    case 0x2026:
      return "...";
    default:
      return "";
  }
}

size_t vd_fold_ascii(const char *in, size_t len, char *out, size_t out_size) {
  if (out_size == 0) return 0;
  const unsigned char *s = (const unsigned char *)in;
  size_t i = 0, o = 0;
  while (i < len && o + 1 < out_size) {
    uint32_t cp = 0;
    size_t n = vd_utf8_decode(s + i, len - i, &cp);
    if (n == 0) {
      out[o++] = ' ';
      i++;
      continue;
    }
    i += n;
    if (cp < 0x80) {
      out[o++] = (char)cp;
      continue;
    }
    const char *form = ascii_form(cp);
    size_t flen = strlen(form);
    if (flen == 0) {
      form = " ";
      flen = 1;
    }
    /* Never longer than the input: every multi-byte sequence is at least as long as its form. */
    for (size_t k = 0; k < flen && o + 1 < out_size; k++) out[o++] = form[k];
  }
  out[o] = '\0';
  return o;
}
