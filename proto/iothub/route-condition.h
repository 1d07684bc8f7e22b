/* Route conditions: the WHERE part of a route (IoT Hub's routing query subset) */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "proto/iothub/route-message.h"
#include "proto/util/cleanup.h"

/*
 * Grammar (keywords and true/false case-insensitive):
 *   or      := and (OR and)*
 *   and     := not (AND not)*
 *   not     := NOT not | compare                 NOT binds tighter than AND, AND than OR
 *   compare := operand [(= | != | <> | < | > | <= | >=) operand]
 *   operand := '(' or ')' | IS_DEFINED '(' property ')' | property | literal
 *   property:= name            an application property ([A-Za-z_][A-Za-z0-9_.-]*, case-sensitive)
 *            | '$' name        a system property ($contentType, ... see route-message.h)
 *   literal := 'string' | "string" | number | true | false
 * Strings: a quote is doubled ('it''s') or backslash-escaped (\' \" \\ \/ \b \f
 * \n \r \t \uXXXX, as edgeHub); \u0000 is refused. Numbers: -?digits[.digits]
 * [e[+-]digits] or -?.digits...; no hex, NaN or infinity.
 *
 * Semantics (IoT Hub's three-valued logic): a missing property is undefined;
 * a comparison with an undefined operand is undefined; NOT undefined is
 * undefined; undefined AND false = false, undefined AND true = undefined;
 * undefined OR true = true, undefined OR false = undefined. Operands of
 * AND/OR/NOT that are not booleans count as undefined. A route matches only
 * when its condition is true.
 *
 * Types: application property values are strings. Strings compare with
 * strings bytewise (all six operators), numbers with numbers, booleans with
 * booleans (= and != only). A string compared with a number is compared
 * numerically when the whole string is a number in the literal syntax above
 * ('7' > 5 is true, ' 7' > 5 and 'seven' > 5 are undefined); every other mix
 * of types is undefined (so temperatureAlert = true is undefined when the
 * property is the string 'true': write temperatureAlert = 'true').
 *
 * $name is always the system property: unlike edgeHub, an application
 * property spelt "$name" never shadows it. Unknown system properties
 * ($enqueuedTime, ...) parse and are undefined; $body queries and functions
 * other than IS_DEFINED are refused.
 *
 * Bounded: at most ROUTE_CONDITION_MAX bytes and ROUTE_CONDITION_DEPTH_MAX
 * nested parentheses/NOT/IS_DEFINED; parsing and evaluation recurse at most
 * that deep.
 */
#define ROUTE_CONDITION_MAX 4096u
#define ROUTE_CONDITION_DEPTH_MAX 32u

typedef struct RouteCondition RouteCondition;

/*
 * Parses a condition starting at byte offset start of s[0..len): it ends
 * before the first token that cannot continue it (INTO in a route), whose
 * offset goes to *ret_end. Errors are -EINVAL with *ret_error = "position N:
 * ..." (N 1-based in s), or -ENOMEM.
 */
int route_condition_parse(const char *s, size_t len, size_t start, RouteCondition **ret, size_t *ret_end,
                          char **ret_error);
RouteCondition *route_condition_free(RouteCondition *c);

/* True when the condition evaluates to true for m. */
bool route_condition_match(const RouteCondition *c, const RouteMessage *m);

DEFINE_CLEANUP_FUNC(RouteCondition, route_condition_free);
