/* libFuzzer target for the CEL front end and evaluator: every input is compiled against a small
 * environment and, when it compiles, evaluated once. Finds crashes, leaks, undefined behaviour
 * and runaway evaluations (the step and memory budgets must hold). */
#include <stdint.h>
#include <string.h>

#include "vd_cel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  vd_cel_env *env = vd_cel_env_new();
  if (!env) return 0;
  vd_cel_value slots[6];
  vd_cel_value tags[3] = {vd_cel_string("vip", 3), vd_cel_string("new", 3), vd_cel_int(7)};
  vd_cel_list tag_list = {3, tags};
  vd_cel_value kv[4] = {vd_cel_string("a", 1), vd_cel_string("b", 1), vd_cel_int(1),
                        vd_cel_double(2.5)};
  vd_cel_map map = {2, kv, kv + 2};
  vd_cel_env_declare(env, "subject.recency", vd_cel_type_of_kind(VD_CEL_INT), NULL, NULL);
  vd_cel_env_declare(env, "subject.country", vd_cel_type_of_kind(VD_CEL_STRING), NULL, NULL);
  vd_cel_env_declare(env, "subject.tags", vd_cel_type_list(env, vd_cel_type_dyn()), NULL, NULL);
  vd_cel_env_declare(env, "m",
                     vd_cel_type_map(env, vd_cel_type_of_kind(VD_CEL_STRING), vd_cel_type_dyn()),
                     NULL, NULL);
  vd_cel_env_declare(env, "d", vd_cel_type_dyn(), NULL, NULL);
  vd_cel_env_declare(env, "now", vd_cel_type_of_kind(VD_CEL_TIMESTAMP), NULL, NULL);
  slots[0] = vd_cel_int(3);
  slots[1] = vd_cel_string("US", 2);
  slots[2] = vd_cel_list_value(&tag_list);
  slots[3] = vd_cel_map_value(&map);
  slots[4] = vd_cel_list_value(&tag_list);
  vd_cel_timestamp_parse("2026-12-03T13:26:45Z", 20, &slots[5], NULL);
  size_t offset = 0;
  vd_error err;
  vd_cel_program *p = vd_cel_compile(env, (const char *)data, size, &offset, &err);
  if (p) {
    unsigned char scratch[2048];
    vd_cel_arena arena;
    vd_cel_arena_init(&arena, scratch, sizeof scratch);
    vd_cel_value result;
    size_t reads[8], nreads = 0;
    vd_cel_eval(p, slots, 6, &arena, &result, vd_cel_program_ref_count(p) <= 8 ? reads : NULL,
                &nreads);
    json_t *j =
        result.kind == VD_CEL_ERROR ? vd_cel_error_json(&result) : vd_cel_to_typed_json(&result);
    json_decref(j);
    vd_cel_arena_free(&arena);
    vd_cel_program_free(p);
  } else if (offset > size) {
    __builtin_trap(); /* an error position must lie inside the input */
  }
  vd_cel_env_free(env);
  return 0;
}
