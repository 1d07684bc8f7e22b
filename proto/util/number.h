/* Decimal numbers in untrusted text */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Digits only (no sign, space or base prefix). -EINVAL not a number, -ERANGE over UINT64_MAX. */
int parse_u64(const char *s, size_t len, uint64_t *ret);
