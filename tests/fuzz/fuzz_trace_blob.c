/* Fuzzes the decision log's trace blob decoder (vd_trace_blob.h: what a damaged or hostile
 * decisions.db hands the readers): any bytes either decode to exactly the length the header
 * records or fail with a message; never a crash, an overread or an allocation the blob cannot
 * justify. Each input is also encoded as a trace, which must decode back to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vd_le.h"
#include "vd_trace_blob.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  vd_error err = {0};
  size_t len = 0;
  char *text = vd_trace_blob_decode(data, size, &len, &err);
  if (text) {
    uint32_t recorded = vd_le_get32(data + 4);
    if (len != recorded || text[len] != '\0') abort();
    free(text);
  } else if (!err.message[0]) {
    abort();
  }
  void *blob = NULL;
  size_t blob_len = 0;
  if (vd_trace_blob_encode((const char *)data, size, &blob, &blob_len)) {
    if (blob_len >= size) abort(); /* stored compressed only when smaller */
    char *back = vd_trace_blob_decode(blob, blob_len, &len, &err);
    if (!back || len != size || memcmp(back, data, size) != 0) abort();
    free(back);
    free(blob);
  }
  return 0;
}
