/*
 * version.h - the build's version (git describe), compiled into one object that the Makefile
 * rebuilds whenever the version changes, so an incremental build never reports a stale one.
 */
#ifndef BASE_VERSION_H
#define BASE_VERSION_H

extern const char skillscope_version[];

#endif
