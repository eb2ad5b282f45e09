/* Fuzzes `verdict score`'s input side: arbitrary bytes as a CSV (first byte even) or JSON Lines
 * file (odd) read row by row against a schema with every field type, with and without a mapping.
 * Every row must come back as a request, a reject with its line, the end, or a fatal error. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "vd_batch_input.h"
#include "vd_schema.h"

static const char schema_text[] =
    "schema: fuzz\n"
    "fields:\n"
    "  subject.id: { type: string, required: true, max_length: 64 }\n"
    "  subject.n: { type: int, min: 0, max: 100 }\n"
    "  subject.x: { type: double }\n"
    "  subject.b: { type: bool, default: false }\n"
    "  subject.e: { type: enum, values: [a, b, c] }\n"
    "  subject.tags: { type: \"list<string>\", max_items: 5 }\n"
    "  subject.ns: { type: \"list<int>\" }\n"
    "  context.now: { type: timestamp, default: now }\n"
    "  candidate.id: { type: string, required: true }\n";

static const char mapping_text[] =
    "csv:\n"
    "  columns: { customer: subject.id, when: context.now }\n"
    "  constants: { subject.e: b }\n"
    "  ignore: [junk]\n";

typedef struct fixture {
  vd_schema *schema;
  vd_batch_mapping *mapping;
  char input[64];
} fixture;

static fixture *setup(void) {
  static fixture f;
  if (f.schema) return &f;
  f.schema = vd_schema_load_string(schema_text, sizeof schema_text - 1, "fuzz.yaml", NULL);
  char map_path[64];
  snprintf(map_path, sizeof map_path, "/tmp/vd-fuzz-map-%d.yaml", (int)getpid());
  FILE *m = fopen(map_path, "w");
  if (m) {
    fputs(mapping_text, m);
    fclose(m);
  }
  f.mapping = vd_batch_mapping_load(map_path, NULL);
  unlink(map_path);
  snprintf(f.input, sizeof f.input, "/tmp/vd-fuzz-batch-%d", (int)getpid());
  if (!f.schema || !f.mapping) abort();
  return &f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fixture *f = setup();
  if (size == 0) return 0;
  FILE *out = fopen(f->input, "wb");
  if (!out) return 0;
  fwrite(data + 1, 1, size - 1, out);
  fclose(out);
  vd_batch_format format = data[0] % 2 ? VD_BATCH_JSONL : VD_BATCH_CSV;
  vd_error err;
  vd_batch_reader *r = vd_batch_reader_open(f->input, format, f->schema, f->mapping, &err);
  if (!r) return 0;
  size_t last = 0;
  for (int rows = 0; rows < 10000; rows++) {
    json_t *request = NULL;
    size_t line = 0;
    vd_diags diags = {0};
    vd_batch_next next = vd_batch_reader_next(r, &request, &line, &diags, &err);
    if (next == VD_BATCH_ROW && !request) abort();
    if (next == VD_BATCH_REJECT && diags.count == 0) abort();
    if ((next == VD_BATCH_ROW || next == VD_BATCH_REJECT) && line <= last) abort(); /* ordered */
    if (next == VD_BATCH_ROW || next == VD_BATCH_REJECT) last = line;
    if (request) {
      json_t *normal = vd_schema_validate(f->schema, request, &diags);
      json_decref(normal);
    }
    json_decref(request);
    vd_diags_free(&diags);
    if (next == VD_BATCH_END || next == VD_BATCH_FATAL) break;
  }
  double p = vd_batch_reader_progress(r);
  if (p < 0 || p > 1) abort();
  vd_batch_reader_close(r);
  return 0;
}
