/* Helpers shared by hub-store's unit tests: scratch folders */
#pragma once

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline int test_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

/* A fresh directory under $TMPDIR (or /tmp); free() the result after test_rmdir(). */
static inline char *test_mkdtemp(void) {
        const char *tmp = getenv("TMPDIR");
        char *dir;

        if (asprintf(&dir, "%s/hub-store-test-XXXXXX", tmp ? tmp : "/tmp") < 0)
                return NULL;
        if (!mkdtemp(dir)) {
                free(dir);
                return NULL;
        }
        return dir;
}

static inline void test_rmdir(const char *dir) {
        (void) nftw(dir, test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
