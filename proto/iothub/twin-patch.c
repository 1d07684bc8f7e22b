/* Twin properties: IoT Hub's limits, JSON merge-patch, minimal diffs, versions */
#include <errno.h>
#include <string.h>

#include "proto/iothub/twin-patch.h"
#include "proto/util/cleanup.h"


/* C1 controls U+0080..U+009F are 0xC2 0x80..0x9F in UTF-8. */
static bool utf8_is_c1(const unsigned char *p, size_t left) {
        return left >= 2 && p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F;
}

static bool twin_key_is_valid(const char *key, size_t len) {
        const unsigned char *p = (const unsigned char *) key;

        if (len == 0 || len > TWIN_KEY_BYTES_MAX)
                return false;
        /* jansson has already checked that keys are valid UTF-8 without NUL. */
        for (size_t i = 0; i < len; i++) {
                if (p[i] < 0x20 || p[i] == 0x7F || p[i] == '.' || p[i] == '$' || p[i] == ' ')
                        return false;
                if (utf8_is_c1(p + i, len - i))
                        return false;
        }
        return true;
}

/* Characters as IoT Hub counts them: code points, without C0/C1 controls. */
static size_t utf8_chars(const char *s, size_t len) {
        const unsigned char *p = (const unsigned char *) s;
        size_t n = 0;

        for (size_t i = 0; i < len; i++) {
                if ((p[i] & 0xC0) == 0x80)
                        continue; /* continuation byte */
                if (p[i] < 0x20 || p[i] == 0x7F || utf8_is_c1(p + i, len - i))
                        continue;
                n++;
        }
        return n;
}

static int check_value(const json_t *v, unsigned depth, bool allow_null, const char **ret_error);

static int check_object(const json_t *o, unsigned depth, bool allow_null, const char **ret_error) {
        const char *key;
        size_t key_len;
        json_t *v;

        json_object_keylen_foreach((json_t *) o, key, key_len, v) {
                if (!twin_key_is_valid(key, key_len)) {
                        *ret_error = "invalid property name (empty, over 1 KiB, or with '.', '$', space or a control character)";
                        return -EINVAL;
                }
                int r = check_value(v, depth, allow_null, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int check_value(const json_t *v, unsigned depth, bool allow_null, const char **ret_error) {
        switch (json_typeof(v)) {
        case JSON_OBJECT:
        case JSON_ARRAY:
                /* depth counts containers below the properties object itself. */
                if (depth + 1 > TWIN_DEPTH_MAX) {
                        *ret_error = "properties nested deeper than 10 levels";
                        return -EINVAL;
                }
                if (json_is_object(v))
                        return check_object(v, depth + 1, allow_null, ret_error);
                for (size_t i = 0; i < json_array_size(v); i++) {
                        /* Inside an array a null is a value, not a deletion: IoT Hub has no null values. */
                        const json_t *e = json_array_get(v, i);
                        if (json_is_null(e)) {
                                *ret_error = "null inside an array";
                                return -EINVAL;
                        }
                        int r = check_value(e, depth + 1, false, ret_error);
                        if (r < 0)
                                return r;
                }
                return 0;
        case JSON_STRING:
                if (json_string_length(v) > TWIN_STRING_BYTES_MAX) {
                        *ret_error = "string value over 4 KiB";
                        return -EINVAL;
                }
                return 0;
        case JSON_INTEGER:
                if (json_integer_value(v) > TWIN_INT_MAX || json_integer_value(v) < TWIN_INT_MIN) {
                        *ret_error = "integer out of range";
                        return -EINVAL;
                }
                return 0;
        case JSON_REAL:
        case JSON_TRUE:
        case JSON_FALSE:
                return 0;
        case JSON_NULL:
                if (!allow_null) {
                        *ret_error = "null value";
                        return -EINVAL;
                }
                return 0;
        }
        *ret_error = "unknown JSON type";
        return -EINVAL;
}

int twin_properties_check(const json_t *props, bool allow_null, const char **ret_error) {
        const char *error = NULL;

        if (!json_is_object(props)) {
                if (ret_error)
                        *ret_error = "properties are not a JSON object";
                return -EBADMSG;
        }
        int r = check_object(props, 0, allow_null, &error);
        if (r < 0 && ret_error)
                *ret_error = error;
        return r;
}

int twin_patch_parse(const void *buf, size_t len, json_t **ret, const char **ret_error) {
        json_error_t e;
        const char *error = NULL;

        if (len > TWIN_PATCH_BYTES_MAX) {
                if (ret_error)
                        *ret_error = "patch over 64 KiB";
                return -E2BIG;
        }
        /* Duplicate keys would make "which value wins" differ between us and the cloud. */
        _cleanup_(json_decrefp) json_t *patch = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &e);
        if (!patch || !json_is_object(patch)) {
                if (ret_error)
                        *ret_error = patch ? "patch is not a JSON object" : "patch is not valid JSON";
                return -EBADMSG;
        }
        int r = twin_properties_check(patch, true, &error);
        if (r < 0) {
                if (ret_error)
                        *ret_error = error;
                return r;
        }
        *ret = TAKE_PTR(patch);
        return 0;
}

static size_t value_size(const json_t *v) {
        const char *key;
        size_t key_len, n = 0;
        json_t *e;

        switch (json_typeof(v)) {
        case JSON_OBJECT:
                json_object_keylen_foreach((json_t *) v, key, key_len, e)
                        n += utf8_chars(key, key_len) + value_size(e);
                return n;
        case JSON_ARRAY:
                for (size_t i = 0; i < json_array_size(v); i++)
                        n += value_size(json_array_get(v, i));
                return n;
        case JSON_STRING:
                return utf8_chars(json_string_value(v), json_string_length(v));
        case JSON_INTEGER:
        case JSON_REAL:
                return 8;
        case JSON_TRUE:
        case JSON_FALSE:
                return 4;
        case JSON_NULL:
                return 0;
        }
        return 0;
}

size_t twin_document_size(const json_t *doc) {
        const char *key;
        size_t key_len, n = 0;
        json_t *v;

        if (!json_is_object(doc))
                return value_size(doc);
        /* $version, $metadata and $etag are read-only and not counted (IoT Hub's rule). */
        json_object_keylen_foreach((json_t *) doc, key, key_len, v)
                if (key_len == 0 || key[0] != '$')
                        n += utf8_chars(key, key_len) + value_size(v);
        return n;
}

/* A copy of an object value with its nulls dropped, recursively (what merging it into nothing gives). */
static json_t *copy_without_nulls(const json_t *v) {
        if (!json_is_object(v))
                return json_deep_copy(v);

        _cleanup_(json_decrefp) json_t *o = json_object();
        if (!o || twin_merge(o, v) < 0)
                return NULL;
        return TAKE_PTR(o);
}

int twin_merge(json_t *target, const json_t *patch) {
        const char *key;
        size_t key_len;
        json_t *v;

        if (!json_is_object(target) || !json_is_object(patch))
                return -EINVAL;

        json_object_keylen_foreach((json_t *) patch, key, key_len, v) {
                if (json_is_null(v)) {
                        (void) json_object_deln(target, key, key_len); /* absent already: fine */
                        continue;
                }
                json_t *t = json_object_getn(target, key, key_len);
                if (json_is_object(v) && json_is_object(t)) {
                        int r = twin_merge(t, v);
                        if (r < 0)
                                return r;
                        continue;
                }
                json_t *copy = copy_without_nulls(v);
                if (!copy || json_object_setn_new(target, key, key_len, copy) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static bool compose_possible(const json_t *first, const json_t *second) {
        const char *key;
        size_t key_len;
        json_t *v;

        json_object_keylen_foreach((json_t *) second, key, key_len, v) {
                json_t *f = json_object_getn(first, key, key_len);
                if (!f || !json_is_object(v))
                        continue;
                /* Deleted or replaced by first, then merged into by second: depends on what was there. */
                if (!json_is_object(f) || !compose_possible(f, v))
                        return false;
        }
        return true;
}

static int compose(json_t *first, const json_t *second) {
        const char *key;
        size_t key_len;
        json_t *v;

        json_object_keylen_foreach((json_t *) second, key, key_len, v) {
                json_t *f = json_object_getn(first, key, key_len);
                if (f && json_is_object(f) && json_is_object(v)) {
                        int r = compose(f, v);
                        if (r < 0)
                                return r;
                        continue;
                }
                /* Everything else second says about key replaces what first said, nulls included. */
                json_t *copy = json_deep_copy(v);
                if (!copy || json_object_setn_new(first, key, key_len, copy) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int twin_patch_compose(json_t *first, const json_t *second) {
        if (!json_is_object(first) || !json_is_object(second))
                return -EINVAL;
        /* Checked whole before any change, so a refusal leaves first as it was. */
        if (!compose_possible(first, second))
                return -EXDEV;
        return compose(first, second);
}

json_t *twin_diff(const json_t *from, const json_t *to) {
        const char *key;
        size_t key_len;
        json_t *v;

        if (!json_is_object(from) || !json_is_object(to))
                return NULL;

        _cleanup_(json_decrefp) json_t *d = json_object();
        if (!d)
                return NULL;

        json_object_keylen_foreach((json_t *) from, key, key_len, v)
                if (!json_object_getn(to, key, key_len) && json_object_setn_new(d, key, key_len, json_null()) < 0)
                        return NULL;

        json_object_keylen_foreach((json_t *) to, key, key_len, v) {
                json_t *old = json_object_getn(from, key, key_len), *change;

                if (old && json_equal(old, v))
                        continue;
                if (json_is_object(old) && json_is_object(v))
                        change = twin_diff(old, v);
                else
                        change = json_deep_copy(v);
                if (!change || json_object_setn_new(d, key, key_len, change) < 0)
                        return NULL;
        }
        return TAKE_PTR(d);
}

json_t *twin_strip_metadata(const json_t *props) {
        const char *key;
        size_t key_len;
        json_t *v;

        if (!json_is_object(props))
                return NULL;
        _cleanup_(json_decrefp) json_t *o = json_object();
        if (!o)
                return NULL;
        json_object_keylen_foreach((json_t *) props, key, key_len, v)
                if ((key_len == 0 || key[0] != '$') && json_object_setn_new(o, key, key_len, json_deep_copy(v)) < 0)
                        return NULL;
        return TAKE_PTR(o);
}

int twin_cloud_properties(const json_t *props, json_t **ret, int64_t *ret_version) {
        const json_t *version = json_object_get(props, "$version");

        if (!json_is_object(props) || !json_is_integer(version) || json_integer_value(version) < 0)
                return -EBADMSG;
        json_t *o = twin_strip_metadata(props);
        if (!o)
                return -ENOMEM;
        *ret = o;
        *ret_version = json_integer_value(version);
        return 0;
}

TwinVersionStep twin_version_step(int64_t have, int64_t got) {
        if (got < 0 || have < 0)
                return _TWIN_VERSION_STEP_INVALID;
        if (got <= have)
                return TWIN_VERSION_STALE;
        if (got == have + 1)
                return TWIN_VERSION_NEXT;
        return TWIN_VERSION_GAP;
}
