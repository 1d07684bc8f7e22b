/* Aligned text tables for hubctl's human output */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "proto/util/cleanup.h"

/*
 * Cells are added left to right, row after row, the header first; widths are
 * computed when printing. Columns are separated by two spaces; no colours, no
 * trailing blanks. Errors are sticky and reported by table_print().
 */
typedef enum TableAlign {
        TABLE_LEFT,
        TABLE_RIGHT,
} TableAlign;

typedef struct Table {
        size_t n_columns;
        TableAlign *align;
        char **cells;    /* row-major, n_cells entries */
        size_t n_cells;
        size_t cap;
        bool has_header;
        int error;
} Table;

/* header (NULL: no header line) and align have n_columns entries. */
int table_new(Table **ret, size_t n_columns, const char *const *header, const TableAlign *align);
Table *table_free(Table *t);

void table_add_cell(Table *t, const char *s);
void table_add_cellf(Table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
size_t table_rows(const Table *t); /* without the header */

/* -EINVAL when the last row is incomplete; the sticky error; -EIO on a write error. f NULL: checks only. */
int table_print(const Table *t, FILE *f);

DEFINE_CLEANUP_FUNC(Table, table_free);
