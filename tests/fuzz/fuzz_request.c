/* Fuzzes a scoring request end to end as the server handles its body: bytes → JSON (parsed as
 * engine/vd_service.c's parse_body does: duplicate keys refused) → schema validation → the whole
 * pipeline (rules, model, trace) on the shipped examples/promotions deployment. Every input must
 * come back as a parse error, a list of violations with field paths, or a decision with a trace;
 * an internal error (500) on any input is a bug and aborts. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "vd_deployment.h"
#include "vd_pipeline.h"

static vd_deployment *deployment(void) {
  static vd_deployment *d;
  if (d) return d;
  static char data_dir[64];
  snprintf(data_dir, sizeof data_dir, "/tmp/vd-fuzz-request-XXXXXX");
  if (!mkdtemp(data_dir)) abort();
  vd_diags diags = {0};
  vd_deployment_load_options options = {.data_dir = data_dir, .require_model = true};
  d = vd_deployment_load(VERDICT_SOURCE_DIR "/examples/promotions", &options, &diags);
  if (!d) {
    for (size_t i = 0; i < diags.count; i++) fprintf(stderr, "%s\n", diags.items[i].message);
    abort();
  }
  vd_diags_free(&diags);
  return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  vd_deployment *d = deployment();
  json_error_t jerr;
  json_t *request = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
  if (!request) return 0;
  if (!json_is_object(request)) {
    json_decref(request);
    return 0;
  }
  vd_pipeline_input input = {.request = request,
                             .decision_id = "01890000-0000-7000-8000-000000000001",
                             .now_us = 1764763200000000};
  vd_decision decision = {0};
  vd_diags violations = {0};
  vd_error err = {0};
  vd_pipeline_status status = vd_pipeline_decide(d, &input, &decision, &violations, &err);
  if (status == VD_PIPELINE_ERROR) {
    fprintf(stderr, "internal error on a request: %s\n", err.message);
    abort();
  }
  if (status == VD_PIPELINE_INVALID && violations.count == 0) abort();
  if (status == VD_PIPELINE_OK) {
    if (!decision.response || !decision.trace) abort();
    char *text = json_dumps(decision.trace, JSON_COMPACT);
    if (!text) abort();
    free(text);
  }
  vd_decision_clear(&decision);
  vd_diags_free(&violations);
  json_decref(request);
  return 0;
}
