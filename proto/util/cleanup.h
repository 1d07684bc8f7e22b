/* Scope-bound cleanup: the one home of _cleanup_ and TAKE_PTR */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

/* Take ownership out of a cleanup variable: it becomes NULL (or -1). */
#define TAKE_PTR(p)                          \
        ({                                   \
                __typeof__(p) _ptr_ = (p);   \
                (p) = NULL;                  \
                _ptr_;                       \
        })
#define TAKE_FD(fd)                          \
        ({                                   \
                int _fd_ = (fd);             \
                (fd) = -1;                   \
                _fd_;                        \
        })

/* Defines typep(Type **p) calling func(*p) when *p is set. */
#define DEFINE_CLEANUP_FUNC(type, func)                \
        static inline void func##p(type **p) {         \
                if (*p)                                \
                        func(*p);                      \
        }

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

/* close() that keeps errno and accepts -1; returns -1 for "fd = safe_close(fd)". */
static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -1;
}
static inline void closep(int *fd) {
        (void) safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

/* Replaces the string *p owns with a copy of s (NULL: none); *p is left alone on ENOMEM. */
static inline int free_and_strdup(char **p, const char *s) {
        char *copy = NULL;

        if (s && !(copy = strdup(s)))
                return -ENOMEM;
        free(*p);
        *p = copy;
        return 0;
}

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))
