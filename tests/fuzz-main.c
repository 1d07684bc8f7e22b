/* Replays fuzz inputs without libFuzzer: each argument is a file or a folder of files */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path) {
        FILE *f = fopen(path, "re");
        if (!f) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -1;
        }
        uint8_t *buf = NULL;
        size_t len = 0, cap = 0;
        for (;;) {
                if (len == cap) {
                        cap = cap ? cap * 2 : 4096;
                        uint8_t *n = realloc(buf, cap);
                        if (!n) {
                                free(buf);
                                fclose(f);
                                return -1;
                        }
                        buf = n;
                }
                size_t got = fread(buf + len, 1, cap - len, f);
                len += got;
                if (got == 0)
                        break;
        }
        fclose(f);
        (void) LLVMFuzzerTestOneInput(buf, len);
        free(buf);
        return 0;
}

int main(int argc, char **argv) {
        unsigned n = 0;

        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
                        return 1;
                }
                if (!S_ISDIR(st.st_mode)) {
                        if (replay_file(argv[i]) < 0)
                                return 1;
                        n++;
                        continue;
                }
                struct dirent **entries;
                int count = scandir(argv[i], &entries, NULL, alphasort);
                if (count < 0)
                        return 1;
                for (int j = 0; j < count; j++) {
                        if (entries[j]->d_name[0] != '.') {
                                char path[4096];
                                snprintf(path, sizeof(path), "%s/%s", argv[i], entries[j]->d_name);
                                if (replay_file(path) < 0)
                                        return 1;
                                n++;
                        }
                        free(entries[j]);
                }
                free(entries);
        }
        printf("replayed %u input(s)\n", n);
        return n > 0 ? 0 : 1;
}
