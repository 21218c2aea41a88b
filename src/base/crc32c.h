/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of every WAL record and block file.
 * Uses the SSE4.2 crc32 instruction when the CPU has it, else slicing-by-8 tables.
 */
#ifndef BASE_CRC32C_H
#define BASE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues crc over n bytes; start with crc = 0. crc32c("123456789") == 0xE3069283. */
uint32_t crc32c(uint32_t crc, const void *p, size_t n);

#endif
