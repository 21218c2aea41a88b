/*
 * internal.h - what the files of src/proto share with each other and nobody else.
 */
#ifndef PROTO_INTERNAL_H
#define PROTO_INTERNAL_H

#include <jansson.h>

/* "an object", "a string", "a number", ...: a JSON value's type as error messages name it
 * ("resourceSpans: expected an array, got a string"). */
const char *proto__json_type_name(const json_t *v);

#endif
