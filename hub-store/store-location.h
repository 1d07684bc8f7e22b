/* Where the message store lives, and a move of it in progress: the location file */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/*
 * The message store starts in {storage.dir}/messages. The edgeHub module's
 * storageFolder (from the deployment, through the agent) moves it to
 * {storageFolder}/messages. {storage.dir}/store-location.json says where it
 * is, so a restart opens the right one, and which step of a move a crash
 * interrupted:
 *
 *   {"dir": D}                 steady
 *   {"dir": D, "wanted": W}    accepted, not finished: W is a partial copy
 *                              (or nothing) and D is whole; redo the move
 *   {"dir": W, "remove": D}    finished: W is whole, D still to delete
 *
 * Every path is absolute and normalized (store_location_path_is_valid).
 * The file is ours, but it is read from disk: parsed here, checked whole.
 */
typedef struct StoreLocation {
        char *dir;
        char *wanted;   /* NULL: no move pending */
        char *remove;   /* NULL: nothing left to delete */
} StoreLocation;

#define STORE_LOCATION_FILE "store-location.json"
#define STORE_LOCATION_MAX 16384u
#define STORE_FOLDER_SUBDIR "messages"

/* Absolute, at most 4095 bytes, no empty, '.' or '..' component, no trailing '/', no control characters. */
bool store_location_path_is_valid(const char *path);

/* -EBADMSG with *ret_error naming the problem; -ENOMEM. */
int store_location_parse(const char *text, size_t len, StoreLocation *ret, char **ret_error);
/* The file's text; NULL on ENOMEM. */
char *store_location_format(const StoreLocation *l);
void store_location_deinit(StoreLocation *l);
