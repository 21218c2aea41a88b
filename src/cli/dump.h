/*
 * dump.h - `skillscope dump`: prints stored samples, log entries and spans as JSON lines.
 */
#ifndef CLI_DUMP_H
#define CLI_DUMP_H

/* argv[0] is the subcommand name ("dump"); options follow. Returns the process exit code:
 * 0 success, 1 failure (message on stderr), 2 usage error. */
int cli_dump_main(int argc, char **argv);

#endif
