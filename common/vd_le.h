/* vd_le: fixed-width little-endian integers in byte buffers, for the formats verdict writes
 * itself (trace blobs, journal frames): the same bytes whatever the host's byte order. */
#ifndef VD_LE_H
#define VD_LE_H

#include <stdint.h>

static inline void vd_le_put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint32_t vd_le_get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void vd_le_put64(unsigned char *p, uint64_t v) {
  vd_le_put32(p, (uint32_t)v);
  vd_le_put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint64_t vd_le_get64(const unsigned char *p) {
  return (uint64_t)vd_le_get32(p) | (uint64_t)vd_le_get32(p + 4) << 32;
}

#endif
