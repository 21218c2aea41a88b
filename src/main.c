/* main.c - the skillscope binary: everything is a subcommand, dispatched by cli/. */
#include "cli/cli.h"

int main(int argc, char **argv) { return cli_main(argc, argv); }
