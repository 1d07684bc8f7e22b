/* Parser of one page of IoT Hub's devicesAndModulesInDeviceScope reply */
#pragma once

#include <stddef.h>

#include "auth-cache/scope.h"

/*
 * A page is {"devices":[...], "modules":[...], "continuationLink": "/..." | null}
 * from the cloud (untrusted bytes, fuzz-scope-page.c). Extra fields anywhere
 * are tolerated; a field of the wrong type makes the whole page -EBADMSG, so
 * a sync that misreads the cloud keeps the old scope instead of dropping
 * identities. Entries the edge must not accept are skipped with a warning:
 * other edge devices as children (iotEdge true), authentication other than
 * "sas", and sas identities without any key.
 */
#define SCOPE_PAGE_BYTES_MAX (16u * 1024u * 1024u)
#define SCOPE_LINK_MAX 4096u

/*
 * On success *ret_page holds the accepted identities (not finalized) and
 * *ret_continuation the relative link of the next page ("/devices/...?..."),
 * or NULL on the last page. -EBADMSG on malformed input, including a
 * continuation link that is not a plain absolute path on the same host.
 */
int scope_page_parse(const void *buf, size_t len, const char *edge_device_id,
                     Scope **ret_page, char **ret_continuation);
