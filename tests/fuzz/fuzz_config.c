/* Fuzzes the `verdict serve` config loader (vd_config_load_string): arbitrary YAML must load into
 * a config or fail with a positioned error; a loaded config must survive the CLI overrides. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vd_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  vd_error err = {0};
  vd_config *c = vd_config_load_string(text, "fuzz.yaml", "/tmp", &err);
  if (!c && !err.message[0]) abort(); /* a refusal always says why */
  if (c) {
    if (!c->listen_host || !c->data_dir) abort();
    vd_error oerr = {0};
    (void)vd_config_override(c, "127.0.0.1:0", NULL, &oerr);
  }
  vd_config_free(c);
  free(text);
  return 0;
}
