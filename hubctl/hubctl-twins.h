/* hubctl twins: the twin-sync daemon's twins as text */
#pragma once

#include <jansson.h>
#include <stdio.h>

/*
 * render_twins: the reply of twin-sync's "twins" command as a table (one
 * row per identity: versions, pending reported patches, connection, link).
 * render_twin: the reply of "twin ID": desired, reported, what the device
 * saw last, what waits to go upstream. f NULL: only checks the reply.
 * -EBADMSG when the reply lacks a field (*error says which), -EIO on write.
 */
int render_twins(FILE *f, json_t *reply, json_error_t *error);
int render_twin(FILE *f, json_t *reply, json_error_t *error);
