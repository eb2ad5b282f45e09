/* Fuzzes the prompt-file loader (llm/vd_prompts.h): a YAML header between "---" lines, then a
 * template with {{placeholders}} checked against the task's. The first input byte picks the task
 * folder the file claims to be in; a prompt that loads must render with every placeholder given,
 * and a refusal always says why. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "vd_prompts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  static const char *const names[] = {"prompts/extract/v1.md", "prompts/itinerary/v2.md",
                                      "prompts/classify/v1.md", "v9.md"};
  const char *name = names[data[0] % 4];
  vd_error err = {0};
  vd_prompt *p = vd_prompt_load_string((const char *)data + 1, size - 1, name, &err);
  if (!p) {
    if (!err.message[0]) abort();
    return 0;
  }
  json_t *vars = json_object();
  for (const char *const *n = vd_prompt_placeholders(vd_prompt_task(p)); n && *n; n++)
    json_object_set_new(vars, *n, json_string("{{value}} with braces }} {{"));
  vd_error rerr = {0};
  char *text = vd_prompt_render(p, vars, &rerr);
  if (!text) abort(); /* every placeholder was given */
  free(text);
  json_decref(vars);
  (void)vd_prompt_token_estimate(p);
  vd_prompt_free(p);
  return 0;
}
