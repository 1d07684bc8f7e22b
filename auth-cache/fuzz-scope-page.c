/* Fuzz target: one page of the cloud's device scope reply */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "auth-cache/scope-page.h"
#include "proto/iothub/iot-identity.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

/* Checked in every build, -DNDEBUG included. */
#define CHECK(x)                \
        do {                    \
                if (!(x))       \
                        abort(); \
        } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(scope_freep) Scope *page = NULL;
        _cleanup_free_ char *link = NULL;

        if (size > 256 * 1024)
                return 0;
        log_set_max_level(LOG_CRIT);

        if (scope_page_parse(data, size, "edge1", &page, &link) < 0)
                return 0;

        /* Whatever was accepted is usable: valid ids, a key or thumbprints, a safe relative link. */
        for (size_t i = 0; i < page->n_items; i++) {
                const Identity *id = page->items[i];
                CHECK(iot_id_is_valid(id->device_id));
                CHECK(!id->module_id || iot_id_is_valid(id->module_id));
                switch (id->auth) {
                case IDENTITY_AUTH_SAS:
                        CHECK(identity_key(id));
                        break;
                case IDENTITY_AUTH_SELF_SIGNED:
                        CHECK(id->primary_thumbprint || id->secondary_thumbprint);
                        break;
                case IDENTITY_AUTH_CA:
                        break;
                default:
                        CHECK(false);
                }
                CHECK(!id->edge || strcmp(id->device_id, "edge1") == 0);
        }
        CHECK(!link || (link[0] == '/' && link[1] != '/'));

        (void) scope_finalize(page, "edge1");
        for (size_t i = 1; i < page->n_items; i++)
                CHECK(strcmp(page->items[i - 1]->name, page->items[i]->name) < 0);
        return 0;
}
