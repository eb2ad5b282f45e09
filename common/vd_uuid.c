#include "vd_uuid.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "vd_time.h"

enum { COUNTER_BITS = 42 };
static const uint64_t counter_max = (UINT64_C(1) << COUNTER_BITS) - 1;

struct vd_uuid_gen {
  pthread_mutex_t lock;
  int64_t last_ms;  /* millisecond of the last id */
  uint64_t counter; /* counter of the last id */
};

static bool random_bytes(void *buf, size_t size, vd_error *err) {
  unsigned char *p = buf;
  while (size > 0) {
    ssize_t n = getrandom(p, size, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return vd_error_set(err, "getrandom failed: %s", strerror(errno));
    }
    p += n;
    size -= (size_t)n;
  }
  return true;
}

vd_uuid_gen *vd_uuid_gen_new(vd_error *err) {
  vd_uuid_gen *gen = calloc(1, sizeof *gen);
  if (!gen) {
    vd_error_set(err, "out of memory");
    return NULL;
  }
  pthread_mutex_init(&gen->lock, NULL);
  gen->last_ms = -1;
  return gen;
}

void vd_uuid_gen_free(vd_uuid_gen *gen) {
  if (!gen) return;
  pthread_mutex_destroy(&gen->lock);
  free(gen);
}

static uint64_t load_be(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v = (v << 8) | p[i];
  return v;
}

static void format_uuid(const unsigned char b[16], char out[VD_UUID_STRING_SIZE]) {
  static const char hex[] = "0123456789abcdef";
  int o = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = hex[b[i] >> 4];
    out[o++] = hex[b[i] & 15];
  }
  out[o] = '\0';
}

bool vd_uuid_v7_at(vd_uuid_gen *gen, int64_t unix_ms, char out[VD_UUID_STRING_SIZE],
                   vd_error *err) {
  /* 6 bytes seed a new millisecond's counter, 4 bytes fill the tail: read them outside the lock. */
  unsigned char rnd[10];
  if (!random_bytes(rnd, sizeof rnd, err)) return false;
  pthread_mutex_lock(&gen->lock);
  int64_t ms = unix_ms;
  uint64_t counter;
  if (ms > gen->last_ms) {
    counter = load_be(rnd, 6) & (counter_max >> 1); /* top bit clear: room for 2^41 more ids */
  } else {
    ms = gen->last_ms; /* same millisecond, or the clock stepped back: stay monotonic */
    counter = gen->counter + 1;
    if (counter > counter_max) { /* exhausted this millisecond: borrow the next one */
      ms++;
      counter = load_be(rnd, 6) & (counter_max >> 1);
    }
  }
  gen->last_ms = ms;
  gen->counter = counter;
  pthread_mutex_unlock(&gen->lock);

  unsigned char b[16];
  uint64_t t = (uint64_t)ms & ((UINT64_C(1) << 48) - 1);
  for (int i = 0; i < 6; i++) b[i] = (unsigned char)(t >> (40 - 8 * i));
  /* counter: 12 bits in rand_a, 30 bits at the top of rand_b (after the 2 variant bits) */
  uint64_t hi12 = counter >> 30, lo30 = counter & ((UINT64_C(1) << 30) - 1);
  b[6] = (unsigned char)(0x70 | (hi12 >> 8));
  b[7] = (unsigned char)(hi12 & 0xff);
  b[8] = (unsigned char)(0x80 | (lo30 >> 24));
  b[9] = (unsigned char)((lo30 >> 16) & 0xff);
  b[10] = (unsigned char)((lo30 >> 8) & 0xff);
  b[11] = (unsigned char)(lo30 & 0xff);
  memcpy(b + 12, rnd + 6, 4);
  format_uuid(b, out);
  return true;
}

bool vd_uuid_v7(vd_uuid_gen *gen, char out[VD_UUID_STRING_SIZE], vd_error *err) {
  return vd_uuid_v7_at(gen, vd_wall_us() / 1000, out, err);
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool vd_uuid_valid(const char *s) {
  if (!s) return false;
  for (int i = 0; i < 36; i++) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : hex_value(s[i]) < 0) return false;
  }
  return s[36] == '\0';
}

int64_t vd_uuid_v7_unix_ms(const char *s) {
  if (!vd_uuid_valid(s) || s[14] != '7' || hex_value(s[19]) < 8 || hex_value(s[19]) > 11) return -1;
  uint64_t ms = 0;
  for (int i = 0; i < 13; i++) {
    if (s[i] == '-') continue;
    ms = (ms << 4) | (uint64_t)hex_value(s[i]); /* valid: every digit is 0..15 */
  }
  return (int64_t)ms;
}
