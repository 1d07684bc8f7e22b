/* hubctl twins: the twin-sync daemon's twins as text */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#include "hubctl/hubctl-table.h"
#include "hubctl/hubctl-twins.h"
#include "proto/util/cleanup.h"

typedef struct TwinRow {
        const char *identity, *link;
        json_int_t desired, reported, seen, pending;
        int connected, in_flight;
} TwinRow;

static int unpack_row(json_t *o, TwinRow *row, json_error_t *error) {
        if (json_unpack_ex(o, error, 0, "{s:s, s:I, s:I, s:I, s:I, s:b, s:s, s:b}", "identity", &row->identity,
                           "desired_version", &row->desired, "reported_version", &row->reported, "seen_version",
                           &row->seen, "pending", &row->pending, "connected", &row->connected, "link", &row->link,
                           "in_flight", &row->in_flight) < 0)
                return -EBADMSG;
        return 0;
}

int render_twins(FILE *f, json_t *reply, json_error_t *error) {
        static const char *const header[] = { "IDENTITY", "DESIRED", "SEEN", "REPORTED", "PENDING", "CONNECTED", "LINK" };
        static const TableAlign align[] = { TABLE_LEFT, TABLE_RIGHT, TABLE_RIGHT, TABLE_RIGHT, TABLE_RIGHT, TABLE_LEFT,
                                            TABLE_LEFT };
        _cleanup_(table_freep) Table *t = NULL;
        json_t *list, *o;
        json_int_t pending, links_up;
        int bus, r;
        size_t i;

        if (json_unpack_ex(reply, error, 0, "{s:o, s:I, s:I, s:b}", "twins", &list, "pending", &pending, "links_up",
                           &links_up, "bus_connected", &bus) < 0 ||
            !json_is_array(list))
                return -EBADMSG;
        r = table_new(&t, ELEMENTSOF(header), header, align);
        if (r < 0)
                return r;
        json_array_foreach(list, i, o) {
                TwinRow row;
                if (unpack_row(o, &row, error) < 0)
                        return -EBADMSG;
                table_add_cell(t, row.identity);
                table_add_cellf(t, "%" JSON_INTEGER_FORMAT, row.desired);
                /* The device is behind the cloud: say so where it shows. */
                table_add_cellf(t, "%" JSON_INTEGER_FORMAT "%s", row.seen, row.seen != row.desired ? "*" : "");
                table_add_cellf(t, "%" JSON_INTEGER_FORMAT, row.reported);
                table_add_cellf(t, "%" JSON_INTEGER_FORMAT "%s", row.pending, row.in_flight ? " (sending)" : "");
                table_add_cell(t, row.connected ? "yes" : "no");
                table_add_cell(t, row.link);
        }
        if (!f)
                return table_print(t, NULL);
        if (fprintf(f, "Twins: %zu, reported patches waiting for the cloud: %" JSON_INTEGER_FORMAT
                       ", links up: %" JSON_INTEGER_FORMAT "%s\n",
                    json_array_size(list), pending, links_up, bus ? "" : " (twin-sync is not on the bus)") < 0)
                return -EIO;
        return table_print(t, f);
}

static int print_section(FILE *f, const char *title, json_t *doc) {
        _cleanup_free_ char *text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (!text)
                return -ENOMEM;
        return fprintf(f, "%s:\n%s\n", title, text) < 0 ? -EIO : 0;
}

int render_twin(FILE *f, json_t *reply, json_error_t *error) {
        json_t *desired, *reported, *seen, *patches, *p;
        TwinRow row;
        size_t i;
        int r;

        if (unpack_row(reply, &row, error) < 0 ||
            json_unpack_ex(reply, error, 0, "{s:o, s:o, s:o, s:o}", "desired", &desired, "reported", &reported, "seen",
                           &seen, "pending_patches", &patches) < 0 ||
            !json_is_array(patches))
                return -EBADMSG;
        json_array_foreach(patches, i, p) {
                json_int_t seq;
                json_t *patch;
                if (json_unpack_ex(p, error, 0, "{s:I, s:o}", "seq", &seq, "patch", &patch) < 0)
                        return -EBADMSG;
        }
        if (!f)
                return 0;
        if (fprintf(f,
                    "Identity:          %s\n"
                    "Connected:         %s, upstream link %s\n"
                    "Desired version:   %" JSON_INTEGER_FORMAT " (the device has seen %" JSON_INTEGER_FORMAT ")\n"
                    "Reported version:  %" JSON_INTEGER_FORMAT "\n"
                    "Pending upstream:  %" JSON_INTEGER_FORMAT " reported patch(es)%s\n",
                    row.identity, row.connected ? "yes" : "no", row.link, row.desired, row.seen, row.reported,
                    row.pending, row.in_flight ? ", the first one in flight" : "") < 0)
                return -EIO;
        r = print_section(f, "Desired", desired);
        if (r >= 0)
                r = print_section(f, "Reported", reported);
        if (r >= 0 && !json_equal(seen, desired))
                r = print_section(f, "Last seen by the device", seen);
        json_array_foreach(patches, i, p) {
                json_int_t seq;
                json_t *patch;
                if (r < 0)
                        break;
                if (json_unpack_ex(p, error, 0, "{s:I, s:o}", "seq", &seq, "patch", &patch) < 0)
                        return -EBADMSG;
                char title[64];
                snprintf(title, sizeof(title), "Pending patch #%" JSON_INTEGER_FORMAT, seq);
                r = print_section(f, title, patch);
        }
        return r;
}
