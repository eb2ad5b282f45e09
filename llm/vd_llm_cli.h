/* vd_llm_cli: what the LLM verbs (`verdict llm`, `verdict prompts`, `verdict eval`) share. */
#ifndef VD_LLM_CLI_H
#define VD_LLM_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "vd_llm.h"

/* Defaults, then the `llm:` section of the config file at config_path (NULL: none; its relative
 * paths are resolved against the file's folder), then data_dir when not NULL. Problems are
 * printed to err. */
bool vd_llm_config_load_file(vd_llm_config *cfg, const char *config_path, const char *data_dir,
                             FILE *err);

#endif
