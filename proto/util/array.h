/* Arrays that grow by doubling: the one home of the growth rule */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

/*
 * Makes room in *p (room for *allocated elements of size bytes) for need
 * elements: doubles, starting at 16, until they fit. 0, or -ENOMEM with *p
 * and *allocated as they were.
 */
static inline int array_reserve(void **p, size_t *allocated, size_t need, size_t size) {
        size_t n;
        void *q;

        if (need <= *allocated)
                return 0;
        for (n = *allocated ? *allocated * 2 : 16; n < need; n *= 2)
                ;
        q = reallocarray(*p, n, size);
        if (!q)
                return -ENOMEM;
        *p = q;
        *allocated = n;
        return 0;
}

/* Room for one element more than used in array (with allocated). */
#define ARRAY_RESERVE_ONE(array, allocated, used) \
        array_reserve((void **) &(array), &(allocated), (used) + 1, sizeof(*(array)))
