/* libFuzzer target: the SSE parser and both providers' stream decoders on arbitrary bytes.
 * The first byte chooses where the input is split (so chunk boundaries are fuzzed too); every
 * event is decoded as Anthropic and as OpenAI. Checks: no crash, no leak, and the parser gives
 * the same events whether the input arrives whole or in two pieces. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vd_buf.h"
#include "vd_llm_provider.h"
#include "vd_sse.h"

typedef struct sink {
  vd_buf log;
  vd_llm_stream anthropic;
  vd_llm_stream openai;
} sink;

static bool on_event(void *ctx, const vd_sse_event *e) {
  sink *s = ctx;
  vd_buf_printf(&s->log, "%s\x1f%s\x1f%s\x1e", e->type, e->data, e->id);
  if (strlen(e->data) != e->data_len && !memchr(e->data, '\0', e->data_len)) abort();
  vd_llm_stream_event(&s->anthropic, e);
  vd_llm_stream_event(&s->openai, e);
  return true;
}

static void run(const uint8_t *data, size_t size, size_t split, vd_buf *out) {
  sink s = {.anthropic = {.wire = VD_LLM_WIRE_ANTHROPIC}, .openai = {.wire = VD_LLM_WIRE_OPENAI}};
  vd_sse_parser *p = vd_sse_parser_new(on_event, &s, 1 << 16);
  if (!p) return;
  bool ok = vd_sse_feed(p, (const char *)data, split, NULL) &&
            vd_sse_feed(p, (const char *)data + split, size - split, NULL);
  vd_buf_printf(out, "%d|", ok);
  vd_buf_append(out, s.log.data ? s.log.data : "", s.log.len);
  vd_sse_parser_free(p);
  vd_buf_free(&s.log);
  vd_llm_stream_free(&s.anthropic);
  vd_llm_stream_free(&s.openai);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  size_t split = data[0] % size;
  data++, size--;
  if (split > size) split = size;
  vd_buf whole = {0}, parts = {0};
  run(data, size, 0, &whole);
  run(data, size, split, &parts);
  /* A line-length failure may land in either piece; compare only successful parses. */
  if (whole.data && parts.data && whole.data[0] == '1' && parts.data[0] == '1' &&
      (whole.len != parts.len || memcmp(whole.data, parts.data, whole.len) != 0))
    abort();
  vd_buf_free(&whole);
  vd_buf_free(&parts);
  return 0;
}
