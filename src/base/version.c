/* version.c - see version.h. SKILLSCOPE_VERSION comes from the Makefile (only for this file). */
#include "base/version.h"

#ifndef SKILLSCOPE_VERSION
#define SKILLSCOPE_VERSION "dev"
#endif

const char skillscope_version[] = SKILLSCOPE_VERSION;
