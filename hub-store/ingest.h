/* Importing the broker plugin's ingest log into the message store */
#pragma once

#include <stdint.h>
#include <systemd/sd-event.h>

#include "hub-store/store.h"
#include "proto/iothub/route-message.h"
#include "proto/runtime/config.h"
#include "proto/util/cleanup.h"

typedef struct Importer Importer;

/*
 * What the importer needs of the rest of hub-store (the Manager, or a test),
 * as LinkOps does for a link: it reads and checks the records, the callee
 * stores them.
 */
typedef struct ImporterOps {
        /*
         * One record: msg as read, rm its identity and property bag parsed
         * (the one parse of these file bytes in hub-store), NULL when the bag
         * did not parse (the plugin checked it: counted as not routed). <0
         * only for errors worth retrying, -ENOBUFS for a record larger than
         * the store's whole budget (dropped).
         */
        int (*message)(void *userdata, const StoreMessage *msg, const RouteMessage *rm);
        /* Records held back for a flush are durable now: every sender may send again. */
        void (*durable)(void *userdata);
} ImporterOps;

/* Records per tick at most: the loop also serves the socket and the links. */
#define IMPORTER_BATCH 5000u
/* A pass this long after the last one even without a wake-up (the inotify watch is only for latency). */
#define IMPORTER_IDLE_USEC (50u * 1000u)
/* After this long without a record to import, records that skipped the WAL are flushed. */
#define IMPORTER_FLUSH_IDLE_USEC (1000u * 1000u)
/* The store-bytes-per-log-byte bound before any record was imported, x256, and how long a measure counts. */
#define IMPORTER_RATIO_INITIAL_Q8 (2u * 256u)
#define IMPORTER_RATIO_WINDOW_USEC (1000u * 1000u)
/* reject_new: hub-store warns that the store is nearly full from this fill level on, until below the lower one. */
#define IMPORTER_FULL_PERCENT 95u
#define IMPORTER_NOT_FULL_PERCENT 90u

/*
 * Creates {storage_dir}/ingest if missing and starts the import timer (and
 * the segment sync timer) on e. store and config must outlive the importer.
 */
int importer_new(sd_event *e, Store *store, const Config *config, const ImporterOps *ops, void *userdata,
                 Importer **ret);
Importer *importer_free(Importer *im);
/* One import pass (the timer's job; tests call it directly). Returns records imported, or <0. */
int importer_run(Importer *im);

DEFINE_CLEANUP_FUNC(Importer, importer_free);
