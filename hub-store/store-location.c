/* Where the message store lives, and a move of it in progress: the location file */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "hub-store/store-location.h"
#include "proto/util/cleanup.h"
#include "proto/util/shown.h"

bool store_location_path_is_valid(const char *path) {
        size_t n = strlen(path);

        if (n < 2 || n > 4095 || path[0] != '/' || path[n - 1] == '/')
                return false;
        /* It ends up in logs and replies: no control characters to forge lines with. */
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) path[i] < 0x20 || path[i] == 0x7f)
                        return false;
        /* Each component: not empty ("//"), not "." and not "..". */
        for (const char *p = path + 1; *p;) {
                size_t k = strcspn(p, "/");
                if (k == 0 || (k == 1 && p[0] == '.') || (k == 2 && p[0] == '.' && p[1] == '.'))
                        return false;
                p += k;
                if (*p == '/')
                        p++;
        }
        return true;
}

void store_location_deinit(StoreLocation *l) {
        free(l->dir);
        free(l->wanted);
        free(l->remove);
        *l = (StoreLocation) {};
}

static int take_path(json_t *doc, const char *key, bool required, char **ret, char **ret_error) {
        json_t *v = json_object_get(doc, key);

        if (!v) {
                if (required)
                        return fail_bad_message(ret_error, "'%s' is missing", key);
                return 0;
        }
        if (!json_is_string(v))
                return fail_bad_message(ret_error, "'%s' must be a string, not %s", key, json_type_name(v));
        /* No NUL can shorten it: json_loadb() refuses \u0000 without JSON_ALLOW_NUL. */
        if (!store_location_path_is_valid(json_string_value(v)))
                return fail_bad_message(ret_error, "'%s' is not an absolute, normalized path", key);
        *ret = strdup(json_string_value(v));
        return *ret ? 0 : -ENOMEM;
}

int store_location_parse(const char *text, size_t len, StoreLocation *ret, char **ret_error) {
        _cleanup_(store_location_deinit) StoreLocation l = {};
        json_auto_t *doc = NULL;
        json_error_t e;
        const char *key;
        json_t *v;
        int r;

        if (len > STORE_LOCATION_MAX)
                return fail_bad_message(ret_error, "larger than %u bytes", STORE_LOCATION_MAX);
        doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
        if (!doc)
                return fail_bad_message(ret_error, "not JSON: %s (line %d)", e.text, e.line);
        if (!json_is_object(doc))
                return fail_bad_message(ret_error, "must be an object, not %s", json_type_name(doc));
        json_object_foreach(doc, key, v)
                if (strcmp(key, "dir") != 0 && strcmp(key, "wanted") != 0 && strcmp(key, "remove") != 0) {
                        char s[SHOWN_MAX + 4];
                        shown(key, s);
                        return fail_bad_message(ret_error, "unknown key '%s'", s);
                }
        r = take_path(doc, "dir", true, &l.dir, ret_error);
        if (r >= 0)
                r = take_path(doc, "wanted", false, &l.wanted, ret_error);
        if (r >= 0)
                r = take_path(doc, "remove", false, &l.remove, ret_error);
        if (r < 0)
                return r;
        /* The two are steps of different moves: both at once means a hand-edited file. */
        if (l.wanted && l.remove)
                return fail_bad_message(ret_error, "'wanted' and 'remove' cannot both be set");
        if ((l.wanted && strcmp(l.wanted, l.dir) == 0) || (l.remove && strcmp(l.remove, l.dir) == 0))
                return fail_bad_message(ret_error, "a move from '%s' to itself", l.dir);
        *ret = l;
        l = (StoreLocation) {};
        return 0;
}

char *store_location_format(const StoreLocation *l) {
        json_auto_t *doc = json_pack("{s:s, s:s?, s:s?}", "dir", l->dir, "wanted", l->wanted, "remove", l->remove);
        if (!doc)
                return NULL;
        /* s:s? writes null for NULL: the file only carries what is set. */
        (void) json_object_del(doc, l->wanted ? "" : "wanted");
        (void) json_object_del(doc, l->remove ? "" : "remove");
        return json_dumps(doc, JSON_COMPACT);
}
