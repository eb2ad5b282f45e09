#define _GNU_SOURCE
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vd_itest.h"

static const char demo_keys[] =
    "keys:\n"
    "  - name: demo-score\n"
    "    sha256: cc6594d5f799f85b0b8f016df22a918956c40f456836aa95cd6765bd67a4eefb\n"
    "    roles: [score]\n"
    "  - name: demo-compliance\n"
    "    sha256: bca02d4a1c71fbbffc0329a8ad24f656a6d40382df73fa5672b44ddb85d64c8c\n"
    "    roles: [compliance]\n"
    "  - name: demo-admin\n"
    "    sha256: cce7a2cf1ae045989cfc914fb95a41526f167a838b3c7d33745143614abace7c\n"
    "    roles: [admin]\n";

static int run(const char *command) {
  int rc = system(command);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

bool vd_itest_prepare(vd_itest_server *s, const char *extra_config) {
  return vd_itest_prepare_keys(s, demo_keys, extra_config);
}

bool vd_itest_prepare_keys(vd_itest_server *s, const char *keys, const char *extra_config) {
  memset(s, 0, sizeof *s);
  s->pid = -1;
  s->stdout_fd = -1;
  snprintf(s->root, sizeof s->root, "/tmp/verdict-itest-XXXXXX");
  if (!mkdtemp(s->root)) return false;
  snprintf(s->config, sizeof s->config, "%s/verdict.yaml", s->root);
  snprintf(s->deployment, sizeof s->deployment, "%s/promotions", s->root);
  snprintf(s->data_dir, sizeof s->data_dir, "%s/data", s->root);
  char command[1024];
  snprintf(command, sizeof command, "cp -r '%s/examples/promotions' '%s'", VERDICT_SOURCE_DIR,
           s->deployment);
  if (run(command) != 0) return false;
  FILE *f = fopen(s->config, "w");
  if (!f) return false;
  fprintf(f, "listen: 127.0.0.1:0\ndata_dir: data\ndeployments: [promotions]\n%s%s\n", keys,
          extra_config ? extra_config : "");
  return fclose(f) == 0;
}

bool vd_itest_prepare_triage(vd_itest_server *s, const char *llm_base_url, int queue_capacity) {
  if (!vd_itest_prepare(s, NULL)) return false;
  char command[1024];
  snprintf(command, sizeof command, "cp -r '%s/examples/triage' '%s/triage'", VERDICT_SOURCE_DIR,
           s->root);
  if (run(command) != 0) return false;
  FILE *f = fopen(s->config, "r");
  if (!f) return false;
  char config[8192];
  size_t n = fread(config, 1, sizeof config - 1, f);
  fclose(f);
  config[n] = '\0';
  static const char served[] = "deployments: [promotions]";
  char *at = strstr(config, served);
  if (!at || !(f = fopen(s->config, "w"))) return false;
  fprintf(f, "%.*sdeployments: [promotions, triage]%s", (int)(at - config), config,
          at + strlen(served));
  fprintf(f,
          "llm:\n"
          "  prompts_dir: %s/examples/prompts\n"
          "  catalogue: %s/examples/itineraries/catalogue.json\n"
          "  gazetteer: %s/examples/triage/gazetteer.tsv\n"
          "  queue_capacity: %d\n"
          "  max_attempts: 1\n"
          "  first_token_timeout_ms: 3000\n"
          "  cache_ttl_s: 0\n"
          "  providers:\n"
          "    fake: {wire: anthropic, base_url: \"%s\", api_key_env: VD_ITEST_FAKE_KEY}\n"
          "  tiers:\n"
          "    small: {provider: fake, model: fake-small, usd_per_mtok_input: 1, "
          "usd_per_mtok_output: 5, max_output_tokens: 1024}\n"
          "    large: {provider: fake, model: fake-large, usd_per_mtok_input: 3, "
          "usd_per_mtok_output: 15, max_output_tokens: 4096}\n",
          VERDICT_SOURCE_DIR, VERDICT_SOURCE_DIR, VERDICT_SOURCE_DIR, queue_capacity, llm_base_url);
  setenv("VD_ITEST_FAKE_KEY", "fake-key", 1);
  return fclose(f) == 0;
}

static bool read_port(vd_itest_server *s) {
  char line[512];
  size_t len = 0;
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  while (len < sizeof line - 1) {
    struct pollfd p = {s->stdout_fd, POLLIN, 0};
    if (poll(&p, 1, 30000) <= 0) return false;
    ssize_t n = read(s->stdout_fd, line + len, 1);
    if (n <= 0) return false;
    if (line[len] == '\n') break;
    len++;
  }
  line[len] = '\0';
  const char *colon = strrchr(line, ':');
  if (!strstr(line, "listening on") || !colon) return false;
  s->port = (int)strtol(colon + 1, NULL, 10);
  return s->port > 0;
}

bool vd_itest_start(vd_itest_server *s) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return false;
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    if (s->stderr_path[0]) {
      int fd = open(s->stderr_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
      if (fd >= 0) dup2(fd, STDERR_FILENO);
    }
    execl(VERDICT_EXE, "verdict", "serve", "--config", s->config, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  s->pid = pid;
  s->stdout_fd = fds[0];
  if (!read_port(s)) return false;
  for (int i = 0; i < 300; i++) {
    vd_itest_response r = vd_itest_call(s, "GET", "/readyz", NULL, NULL, 0);
    long status = r.status;
    vd_itest_response_free(&r);
    if (status == 200) return true;
    usleep(100 * 1000);
  }
  return false;
}

int vd_itest_stop(vd_itest_server *s, int sig) {
  if (s->pid <= 0) return -1;
  kill(s->pid, sig);
  int status = 0;
  pid_t got;
  do got = waitpid(s->pid, &status, 0);
  while (got < 0 && errno == EINTR);
  s->pid = -1;
  if (s->stdout_fd >= 0) close(s->stdout_fd);
  s->stdout_fd = -1;
  if (got < 0) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

void vd_itest_cleanup(vd_itest_server *s) {
  if (s->pid > 0) vd_itest_stop(s, SIGKILL);
  if (!s->root[0]) return;
  char command[512];
  snprintf(command, sizeof command, "rm -rf '%s'", s->root);
  run(command);
}

static size_t collect(char *data, size_t size, size_t count, void *ctx) {
  vd_itest_response *r = ctx;
  size_t n = size * count;
  char *grown = realloc(r->body, r->size + n + 1);
  if (!grown) return 0;
  r->body = grown;
  memcpy(r->body + r->size, data, n);
  r->size += n;
  r->body[r->size] = '\0';
  return n;
}

vd_itest_response vd_itest_call(const vd_itest_server *s, const char *method, const char *path,
                                const char *key, const char *body, size_t size) {
  return vd_itest_call_typed(s, method, path, key, body ? "application/json" : NULL, body, size);
}

vd_itest_response vd_itest_call_typed(const vd_itest_server *s, const char *method,
                                      const char *path, const char *key, const char *content_type,
                                      const char *body, size_t size) {
  vd_itest_response r = {0};
  CURL *curl = curl_easy_init();
  if (!curl) return r;
  char url[512];
  snprintf(url, sizeof url, "%s://127.0.0.1:%d%s", s->ca_file[0] ? "https" : "http", s->port, path);
  if (s->ca_file[0]) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, s->ca_file);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L); /* the certificate names IP 127.0.0.1 */
  }
  struct curl_slist *headers = NULL;
  char auth[256];
  if (key) {
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    headers = curl_slist_append(headers, auth);
  }
  char type[160] = "Content-Type:"; /* an empty value removes libcurl's form type for a body */
  if (content_type) snprintf(type, sizeof type, "Content-Type: %s", content_type);
  if (content_type || body) headers = curl_slist_append(headers, type);
  headers = curl_slist_append(headers, "Expect:");
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  if (body) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)size);
  }
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
    char *type = NULL;
    curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type);
    if (type) snprintf(r.content_type, sizeof r.content_type, "%s", type);
    if (r.body) r.json = json_loadb(r.body, r.size, 0, NULL);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return r;
}

void vd_itest_response_free(vd_itest_response *r) {
  free(r->body);
  json_decref(r->json);
  *r = (vd_itest_response){0};
}

const char *vd_itest_customer(const char *subject_id, char *buf, size_t size) {
  snprintf(buf, size,
           "{\"subject\": {\"id\": \"%s\", \"recency\": 6, \"history\": 329.08, \"mens\": true, "
           "\"womens\": true, \"zip_code\": \"Rural\", \"newbie\": true, \"channel\": \"Web\", "
           "\"marketing_opt_out\": false, \"emails_last_30d\": 1, \"country\": \"US\"}}",
           subject_id);
  return buf;
}

bool vd_itest_start_with_decision(vd_itest_server *s, const char *subject_id, char *decision_id,
                                  size_t size) {
  if (!vd_itest_prepare(s, NULL) || !vd_itest_start(s)) {
    fprintf(stderr, "verdict serve did not become ready (in %s)\n", s->root);
    return false;
  }
  char body[512];
  vd_itest_customer(subject_id, body, sizeof body);
  vd_itest_response r =
      vd_itest_call(s, "POST", "/v1/promotions/score", "demo-score", body, strlen(body));
  const char *id = json_string_value(json_object_get(r.json, "decision_id"));
  if (r.status != 200 || !id)
    fprintf(stderr, "scoring %s: HTTP %ld: %s\n", subject_id, r.status, r.body ? r.body : "");
  else
    snprintf(decision_id, size, "%s", id);
  bool ok = r.status == 200 && id;
  vd_itest_response_free(&r);
  return ok;
}

bool vd_itest_finish(vd_itest_server *s) {
  bool ok = s->pid <= 0 || vd_itest_stop(s, SIGTERM) == 0;
  vd_itest_cleanup(s);
  return ok;
}

vd_itest_response vd_itest_get_compliance(const vd_itest_server *s, const char *path) {
  return vd_itest_call(s, "GET", path, "demo-compliance", NULL, 0);
}

bool vd_itest_indexed(const vd_itest_server *s, const char *decision_id) {
  char path[160];
  snprintf(path, sizeof path, "/v1/decisions/%s", decision_id);
  vd_itest_response r = vd_itest_get_compliance(s, path);
  bool ok = r.status == 200;
  vd_itest_response_free(&r);
  return ok;
}

const char *vd_itest_error_string(const vd_itest_response *r, const char *key) {
  return json_string_value(json_object_get(json_object_get(r->json, "error"), key));
}

/* Splits one CSV line in place (RFC 4180 quotes, no embedded newlines). */
static size_t split_csv(char *line, char **fields, size_t max) {
  size_t n = 0;
  char *p = line;
  while (n < max) {
    char *out = p, *start = p;
    bool quoted = *p == '"';
    if (quoted) p++;
    while (*p) {
      if (quoted && *p == '"' && p[1] == '"') {
        *out++ = '"';
        p += 2;
      } else if (quoted && *p == '"') {
        quoted = false;
        p++;
      } else if (!quoted && *p == ',') {
        break;
      } else {
        *out++ = *p++;
      }
    }
    bool more = *p == ',';
    *out = '\0';
    fields[n++] = start;
    if (!more) break;
    p++;
  }
  return n;
}

char *vd_itest_hillstrom_request(const char *csv_line, int row) {
  char *copy = strdup(csv_line);
  char *f[12] = {0};
  if (split_csv(copy, f, 12) < 8) {
    free(copy);
    return NULL;
  }
  char id[32];
  snprintf(id, sizeof id, "hillstrom-%d", row);
  json_t *subject =
      json_pack("{s:s, s:i, s:s, s:f, s:b, s:b, s:s, s:b, s:s, s:b, s:i, s:s}", "id", id, "recency",
                (int)strtol(f[0], NULL, 10), "history_segment", f[1], "history", strtod(f[2], NULL),
                "mens", f[3][0] == '1', "womens", f[4][0] == '1', "zip_code", f[5], "newbie",
                f[6][0] == '1', "channel", f[7], "marketing_opt_out", row % 17 == 5,
                "emails_last_30d", row % 6, "country", row % 23 == 7 ? "FR" : "US");
  json_t *request = json_pack("{s:o}", "subject", subject);
  char *text = json_dumps(request, JSON_COMPACT);
  json_decref(request);
  free(copy);
  return text;
}

size_t vd_itest_hillstrom_rows(size_t max, char ***lines) {
  char path[512];
  snprintf(path, sizeof path, "%s/data/hillstrom/hillstrom.csv", VERDICT_SHARED_DIR);
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "SKIP: %s is absent (the shared data folder is not beside the checkout)\n",
            path);
    return 0;
  }
  *lines = calloc(max, sizeof **lines);
  char buf[512];
  size_t n = 0;
  bool header = true;
  while (n < max && fgets(buf, sizeof buf, f)) {
    if (header) {
      header = false;
      continue;
    }
    buf[strcspn(buf, "\r\n")] = '\0';
    (*lines)[n++] = strdup(buf);
  }
  fclose(f);
  return n;
}
