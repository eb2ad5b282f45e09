#include "vd_trace_blob.h"

#include <inttypes.h>
#include <lz4.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "vd_le.h"

static const char magic[3] = {'V', 'D', 'Z'};

/* LZ4 expands at most 255 times (a match token codes at most 255 more bytes per byte of input):
 * a recorded length beyond that cannot be honest, so nothing that large is allocated for it. */
enum { LZ4_MAX_RATIO = 255 };

/* CRC-32 of the header's first 8 bytes and the block. */
static uint32_t blob_crc(const unsigned char *blob, size_t len) {
  uLong crc = crc32(0L, blob, 8);
  crc = crc32_z(crc, blob + VD_TRACE_BLOB_HEADER, len - VD_TRACE_BLOB_HEADER);
  return (uint32_t)crc;
}

bool vd_trace_blob_encode(const char *text, size_t len, void **blob, size_t *blob_len) {
  *blob = NULL;
  *blob_len = 0;
  if (len <= VD_TRACE_BLOB_HEADER || len > VD_TRACE_BLOB_MAX) return false;
  /* worth it only if the block is smaller than the text less the header */
  int room = (int)(len - VD_TRACE_BLOB_HEADER - 1);
  unsigned char *out = malloc(VD_TRACE_BLOB_HEADER + (size_t)room);
  if (!out) return false;
  /* LZ4 gives up (returns 0) as soon as the output would not fit the room: no shrink */
  int block = LZ4_compress_default(text, (char *)out + VD_TRACE_BLOB_HEADER, (int)len, room);
  if (block <= 0) {
    free(out);
    return false;
  }
  memcpy(out, magic, sizeof magic);
  out[3] = VD_TRACE_BLOB_LZ4;
  vd_le_put32(out + 4, (uint32_t)len);
  size_t total = VD_TRACE_BLOB_HEADER + (size_t)block;
  vd_le_put32(out + 8, blob_crc(out, total));
  *blob = out;
  *blob_len = total;
  return true;
}

char *vd_trace_blob_decode(const void *blob, size_t len, size_t *text_len, vd_error *err) {
  const unsigned char *b = blob;
  *text_len = 0;
  if (len < VD_TRACE_BLOB_HEADER) {
    vd_error_set(err, "truncated: %zu bytes, shorter than the %d-byte header", len,
                 VD_TRACE_BLOB_HEADER);
    return NULL;
  }
  if (memcmp(b, magic, sizeof magic) != 0) {
    vd_error_set(err, "not a compressed trace (bad magic %02x %02x %02x)", b[0], b[1], b[2]);
    return NULL;
  }
  if (b[3] != VD_TRACE_BLOB_LZ4) {
    vd_error_set(err, "unknown format %u (this version reads format %d, LZ4)", b[3],
                 VD_TRACE_BLOB_LZ4);
    return NULL;
  }
  size_t block = len - VD_TRACE_BLOB_HEADER;
  uint32_t want = vd_le_get32(b + 4);
  if (want == 0 || want > VD_TRACE_BLOB_MAX || (uint64_t)want > (uint64_t)block * LZ4_MAX_RATIO) {
    vd_error_set(err, "bad length: %" PRIu32 " bytes cannot come from a %zu-byte block", want,
                 block);
    return NULL;
  }
  uint32_t crc = blob_crc(b, len);
  if (crc != vd_le_get32(b + 8)) {
    vd_error_set(err,
                 "checksum mismatch (stored %08" PRIx32 ", computed %08" PRIx32
                 "): damaged or truncated",
                 vd_le_get32(b + 8), crc);
    return NULL;
  }
  char *text = malloc((size_t)want + 1);
  if (!text) {
    vd_error_set(err, "out of memory");
    return NULL;
  }
  int got =
      LZ4_decompress_safe((const char *)b + VD_TRACE_BLOB_HEADER, text, (int)block, (int)want);
  if (got != (int)want) {
    if (got < 0)
      vd_error_set(err, "the LZ4 block does not decode (%zu bytes)", block);
    else
      vd_error_set(err, "decodes to %d bytes, not the recorded %" PRIu32, got, want);
    free(text);
    return NULL;
  }
  text[want] = '\0';
  *text_len = want;
  return text;
}
