/* Aligned text tables for hubctl's human output */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hubctl/hubctl-table.h"
#include "proto/util/cleanup.h"

int table_new(Table **ret, size_t n_columns, const char *const *header, const TableAlign *align) {
        _cleanup_(table_freep) Table *t = NULL;

        if (n_columns == 0)
                return -EINVAL;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->n_columns = n_columns;
        t->align = calloc(n_columns, sizeof(*t->align));
        if (!t->align)
                return -ENOMEM;
        memcpy(t->align, align, n_columns * sizeof(*align));

        if (header) {
                t->has_header = true;
                for (size_t i = 0; i < n_columns; i++)
                        table_add_cell(t, header[i]);
                if (t->error < 0)
                        return t->error;
        }

        *ret = TAKE_PTR(t);
        return 0;
}

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t->align);
        free(t);
        return NULL;
}

static void table_take_cell(Table *t, char *s) {
        if (!s) {
                if (t->error == 0)
                        t->error = -ENOMEM;
                return;
        }
        if (t->error < 0) {
                free(s);
                return;
        }
        if (t->n_cells == t->cap) {
                size_t cap = t->cap ? t->cap * 2 : 16 * t->n_columns;
                char **cells = reallocarray(t->cells, cap, sizeof(*cells));
                if (!cells) {
                        free(s);
                        t->error = -ENOMEM;
                        return;
                }
                t->cells = cells;
                t->cap = cap;
        }
        t->cells[t->n_cells++] = s;
}

void table_add_cell(Table *t, const char *s) {
        table_take_cell(t, strdup(s ?: ""));
}

void table_add_cellf(Table *t, const char *fmt, ...) {
        char *s = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        table_take_cell(t, s);
}

size_t table_rows(const Table *t) {
        return t->n_cells / t->n_columns - (t->has_header ? 1 : 0);
}

int table_print(const Table *t, FILE *f) {
        _cleanup_free_ size_t *width = NULL;

        if (t->error < 0)
                return t->error;
        if (t->n_cells % t->n_columns != 0)
                return -EINVAL;
        if (!f)
                return 0;

        width = calloc(t->n_columns, sizeof(*width));
        if (!width)
                return -ENOMEM;
        for (size_t i = 0; i < t->n_cells; i++) {
                size_t l = strlen(t->cells[i]);
                if (l > width[i % t->n_columns])
                        width[i % t->n_columns] = l;
        }

        for (size_t i = 0; i < t->n_cells; i++) {
                size_t c = i % t->n_columns;
                bool last = c + 1 == t->n_columns;
                int w = (int) width[c];

                if (c > 0)
                        fputs("  ", f);
                if (t->align[c] == TABLE_RIGHT)
                        fprintf(f, "%*s", w, t->cells[i]);
                else if (last)
                        fputs(t->cells[i], f);
                else
                        fprintf(f, "%-*s", w, t->cells[i]);
                if (last)
                        fputc('\n', f);
        }

        return ferror(f) ? -EIO : 0;
}
