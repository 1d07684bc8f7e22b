/* Importing the broker plugin's ingest log into the message store */
#pragma once

#include <stdint.h>

typedef struct Manager Manager;
typedef struct Importer Importer;

/* Records per tick at most: the loop also serves the socket and the links. */
#define IMPORTER_BATCH 5000u
#define IMPORTER_BUSY_USEC (5u * 1000u)   /* next tick when records flowed */
#define IMPORTER_IDLE_USEC (50u * 1000u)  /* next tick when the log was quiet */
/* reject_new: the plugin refuses new messages from this fill level on, and again below the lower one. */
#define IMPORTER_FULL_PERCENT 95u
#define IMPORTER_NOT_FULL_PERCENT 90u

/* Creates {storage_dir}/ingest if missing and starts the import timer (and the segment sync timer). */
int importer_new(Manager *m, Importer **ret);
Importer *importer_free(Importer *im);
/* One import pass (the timer's job; tests call it directly). Returns records imported, or <0. */
int importer_run(Importer *im);

static inline void importer_freep(Importer **im) {
        if (*im)
                importer_free(*im);
}
