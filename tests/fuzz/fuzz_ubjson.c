/* Fuzzes the UBJSON reader (vd_ubjson.h: the triage model's model.ubj): any bytes either decode
 * to a value — which must then survive a JSON dump and reload — or fail with a message that says
 * where; never a crash, a hang or an allocation the input cannot justify. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vd_ubjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  vd_error err = {0};
  json_t *v = vd_ubjson_loadb(data, size, &err);
  if (!v) {
    if (strncmp(err.message, "byte ", 5) != 0 && strcmp(err.message, "out of memory") != 0) abort();
    return 0;
  }
  char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
  if (!text) abort(); /* (no NaN or infinity is decoded: every value has a JSON text) */
  json_t *again = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
  if (!again) abort();
  json_decref(again);
  free(text);
  json_decref(v);
  return 0;
}
