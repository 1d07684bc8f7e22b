/* Fuzz target: hubctl's checks, merge and rendering of daemon replies */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "hubctl/hubctl-render.h"
#include "hubctl/hubctl-twins.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_auto_t *j = NULL, *merged = NULL;
        json_error_t e;
        FILE *out;

        if (size > 65536)
                return 0;
        j = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES, &e);
        if (!j)
                return 0;
        out = fopen("/dev/null", "we");
        if (!out)
                abort();

        /* The same document as every reply: each check either accepts and renders, or says -EBADMSG. */
        (void) render_status(out, j, NULL, 1714564800000, &e);
        (void) render_status(out, NULL, j, 1714564800000, &e);
        (void) render_status(out, j, j, 0, &e);
        (void) render_queues(out, j, &e);
        (void) render_sync(out, j, &e);
        /* What the check accepts, rendering must take. */
        if (render_twins(NULL, j, &e) == 0 && render_twins(out, j, &e) == -EBADMSG)
                abort();
        if (render_twin(NULL, j, &e) == 0 && render_twin(out, j, &e) == -EBADMSG)
                abort();
        if (devices_merge(j, j, &merged, &e) == 0) {
                /* What merge produces, render must take. */
                if (render_devices(out, merged, &e) < 0)
                        abort();
        }
        json_decref(merged);
        merged = NULL;
        if (devices_merge(j, NULL, &merged, &e) == 0 && render_devices(out, merged, &e) < 0)
                abort();
        json_decref(merged);
        merged = NULL;
        if (devices_merge(NULL, j, &merged, &e) == 0 && render_devices(out, merged, &e) < 0)
                abort();

        fclose(out);
        return 0;
}
