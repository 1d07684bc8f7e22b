/* A child's stdout and stderr, forwarded line by line with its name in front */
#pragma once

#include <stddef.h>
#include <systemd/sd-event.h>

#include "proto/util/cleanup.h"

/*
 * "hub-store: <6>message": each line is one write() to out_fd so lines of
 * different children never interleave. A line longer than the buffer is cut;
 * a last line without '\n' is flushed at EOF. Writes to out_fd block: the
 * runner is a development tool and its stderr is read by a person or a test.
 */
typedef struct OutputForwarder OutputForwarder;

/* Takes ownership of fd (the read end of the child's pipe); NULL event: no I/O source, feed by hand (tests). */
int output_forwarder_new(OutputForwarder **ret, sd_event *e, int fd, const char *prefix, int out_fd);
OutputForwarder *output_forwarder_free(OutputForwarder *o);

/* The line splitter, exposed for tests: consumes data, writes complete lines. */
void output_forwarder_feed(OutputForwarder *o, const char *data, size_t len);
/* Writes what is buffered as a last line. */
void output_forwarder_flush(OutputForwarder *o);
/* Forwards whatever the pipe holds now (the child has exited), then flushes. */
void output_forwarder_drain(OutputForwarder *o);

DEFINE_CLEANUP_FUNC(OutputForwarder, output_forwarder_free);
