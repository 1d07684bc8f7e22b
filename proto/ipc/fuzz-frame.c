/* Fuzz target: frame parsing, and build-then-parse round trips */
#include <stdlib.h>
#include <string.h>

#include "proto/ipc/frame.h"
#include "proto/runtime/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Frame f;

        log_set_max_level(LOG_CRIT);
        if (size > FRAME_BODY_MAX)
                return 0;
        if (frame_parse(&f, data, size) < 0)
                return 0;

        /* Re-encoding the parsed fields must give back the same body. */
        FrameBuilder b = FRAME_BUILDER_NULL;
        frame_builder_init(&b, f.type);
        for (size_t i = 0; i < f.n_fields; i++)
                frame_builder_add(&b, f.fields[i].tag, f.fields[i].data, f.fields[i].len);
        /* Not assert(): the invariant must hold in -DNDEBUG builds too. */
        if (frame_builder_finish(&b) < 0 || b.len != size + FRAME_HEADER_SIZE ||
            memcmp(b.buf + FRAME_HEADER_SIZE, data, size) != 0)
                abort();

        for (size_t i = 0; i < f.n_fields; i++) {
                char *s = NULL;
                if (frame_get_string(&f, f.fields[i].tag, &s) == 0)
                        free(s);
        }
        frame_builder_deinit(&b);
        return 0;
}
