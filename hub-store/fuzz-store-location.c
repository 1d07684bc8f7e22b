/* Fuzz target: the message store's location file, with a round trip */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hub-store/store-location.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        StoreLocation l = {}, again = {};
        char *error = NULL;

        if (store_location_parse((const char *) data, size, &l, &error) < 0) {
                if (!error)
                        abort(); /* every refusal says why (or it was out of memory) */
                free(error);
                return 0;
        }
        /* Every path taken is one we would act on. */
        if (!store_location_path_is_valid(l.dir) || (l.wanted && !store_location_path_is_valid(l.wanted)) ||
            (l.remove && !store_location_path_is_valid(l.remove)))
                abort();
        char *text = store_location_format(&l);
        if (!text || store_location_parse(text, strlen(text), &again, NULL) < 0 || strcmp(again.dir, l.dir) != 0)
                abort();
        free(text);
        store_location_deinit(&again);
        store_location_deinit(&l);
        return 0;
}
