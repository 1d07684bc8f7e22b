/* hubctl modules / deployment: the agent's modules and deployment as text */
#include <errno.h>
#include <string.h>

#include "hubctl/hubctl-modules.h"
#include "hubctl/hubctl-table.h"
#include "proto/util/cleanup.h"

int render_modules(FILE *f, json_t *reply, json_error_t *error) {
        static const char *const header[] = { "MODULE", "DESIRED", "RUNTIME", "PID", "RESTARTS", "EXIT", "LAST EXIT",
                                              "DESCRIPTION" };
        static const TableAlign align[] = { TABLE_LEFT,  TABLE_LEFT,  TABLE_LEFT, TABLE_RIGHT,
                                            TABLE_RIGHT, TABLE_RIGHT, TABLE_LEFT, TABLE_LEFT };
        _cleanup_(table_freep) Table *t = NULL;
        json_t *list, *m;
        size_t i;

        if (json_unpack_ex(reply, error, 0, "{s:o}", "modules", &list) < 0 || !json_is_array(list))
                return -EBADMSG;
        if (table_new(&t, ELEMENTSOF(header), header, align) < 0)
                return -ENOMEM;
        json_array_foreach(list, i, m) {
                const char *name, *runtime, *desc, *last_exit, *status = NULL;
                json_int_t pid, restarts, code;
                if (json_unpack_ex(m, error, 0, "{s:s, s:s, s:I, s:I, s:I, s:s, s:s, s?s}", "name", &name,
                                   "runtimeStatus", &runtime, "pid", &pid, "restartCount", &restarts, "exitCode", &code,
                                   "lastExitTimeUtc", &last_exit, "statusDescription", &desc, "status", &status) < 0)
                        return -EBADMSG;
                table_add_cell(t, name);
                table_add_cell(t, status ? status : "(removed)");
                table_add_cell(t, runtime);
                if (pid > 0)
                        table_add_cellf(t, "%lld", (long long) pid);
                else
                        table_add_cell(t, "-");
                table_add_cellf(t, "%lld", (long long) restarts);
                if (strncmp(last_exit, "0001-", 5) == 0) {
                        table_add_cell(t, "-");
                        table_add_cell(t, "-");
                } else {
                        table_add_cellf(t, "%lld", (long long) code);
                        table_add_cell(t, last_exit);
                }
                table_add_cell(t, desc);
        }
        if (!f)
                return table_print(t, NULL);
        if (json_array_size(list) == 0)
                return fprintf(f, "No modules deployed.\n") < 0 ? -EIO : 0;
        return table_print(t, f);
}

int render_deployment(FILE *f, json_t *reply, json_error_t *error) {
        json_t *applied, *last;
        json_int_t twin_version;
        int link_up, bus;

        if (json_unpack_ex(reply, error, 0, "{s:o, s:o, s:I, s:b, s:b}", "applied", &applied, "last", &last,
                           "twinVersion", &twin_version, "linkUp", &link_up, "busConnected", &bus) < 0)
                return -EBADMSG;
        const char *source = NULL, *schema = NULL, *at = NULL;
        json_int_t version = -1, n = 0;
        if (!json_is_null(applied) &&
            json_unpack_ex(applied, error, 0, "{s:s, s:I, s:s, s:s, s:I}", "source", &source, "version", &version,
                           "schemaVersion", &schema, "appliedAt", &at, "modules", &n) < 0)
                return -EBADMSG;
        const char *last_source = NULL, *desc = NULL;
        json_int_t last_version = -1;
        int code = 0;
        if (!json_is_null(last) && json_unpack_ex(last, error, 0, "{s:s, s:I, s:i, s:s}", "source", &last_source,
                                                  "version", &last_version, "code", &code, "description", &desc) < 0)
                return -EBADMSG;
        if (!f)
                return 0;

        int r = 0;
        if (source)
                r |= fprintf(f, "Applied:       version %lld from the %s (schema %s), %lld modules, since %s\n",
                             (long long) version, strcmp(source, "twin") == 0 ? "$edgeAgent twin" : "local file",
                             schema, (long long) n, at) < 0;
        else
                r |= fprintf(f, "Applied:       none\n") < 0;
        if (last_source)
                r |= fprintf(f, "Last attempt:  version %lld from the %s: %s (%d)%s%s\n", (long long) last_version,
                             strcmp(last_source, "twin") == 0 ? "$edgeAgent twin" : "local file",
                             code == 200 ? "applied" : "refused", code, *desc ? ": " : "", desc) < 0;
        r |= fprintf(f, "Twin version:  %lld handled, link %s%s\n", (long long) twin_version, link_up ? "up" : "down",
                     bus ? "" : " (the agent is not on the bus)") < 0;
        return r ? -EIO : 0;
}
