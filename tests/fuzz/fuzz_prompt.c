/* libFuzzer target: the prompt file loader (header, placeholders, ids) on arbitrary bytes, under
 * each task's folder name. Checks: no crash, no leak; a refused file has a message and a position
 * inside the input; an accepted one has an id made of its version and the SHA-256 of exactly these
 * bytes, and renders with every placeholder its task provides. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vd_hash.h"
#include "vd_prompts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const names[] = {"prompts/extract/v1.md", "prompts/itinerary/v2.md",
                                      "prompts/classify/v3.md"};
  size_t lines = 1;
  for (size_t i = 0; i < size; i++) lines += data[i] == '\n' || data[i] == '\r'; /* YAML: CR too */
  for (size_t n = 0; n < 3; n++) {
    vd_error err = {0};
    vd_prompt *p = vd_prompt_load_string((const char *)data, size, names[n], &err);
    if (!p) {
      if (!err.message[0]) abort();
      if (err.line < 0 || (size_t)err.line > lines + 1) abort();
      continue;
    }
    char hex[VD_SHA256_HEX_SIZE], want[VD_PROMPT_ID_SIZE];
    vd_sha256_hex(data, size, hex);
    snprintf(want, sizeof want, "%s@%.12s", vd_prompt_version(p), hex);
    if (strcmp(want, vd_prompt_id(p)) != 0) abort();
    json_t *vars = json_object();
    for (const char *const *v = vd_prompt_placeholders(vd_prompt_task(p)); *v; v++)
      json_object_set_new(vars, *v, json_string("x"));
    char *text = vd_prompt_render(p, vars, &err);
    if (!text) abort();
    free(text);
    json_decref(vars);
    vd_prompt_free(p);
  }
  return 0;
}
