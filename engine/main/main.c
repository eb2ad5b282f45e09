#include <stdio.h>

#include "vd_cli.h"

int main(int argc, char **argv) { return vd_cli_main(argc, argv, stdout, stderr); }
