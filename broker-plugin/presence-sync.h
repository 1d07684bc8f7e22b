/* Telling a restarted hub-store which identities are connected */
#pragma once

typedef struct Plugin Plugin;

/*
 * Call after every call to hub-store that got a reply. If the reply came
 * over a new connection (FrameClient.connects changed, not the first one),
 * hub-store may have restarted with an empty presence set: re-send
 * CONNECTED=1 for every identity in p->presence, each once. Also after the
 * first connection if a connect report was lost before it. Failures are only
 * logged; a resync cut short by a dropped connection is redone after the
 * next reply, as that comes over yet another connection.
 */
void presence_sync(Plugin *p);

/* How often the idle connection to hub-store is looked at (MOSQ_EVT_TICK). */
#define PRESENCE_CHECK_USEC (250u * 1000u)

/*
 * MOSQ_EVT_TICK: if hub-store closed the idle connection (it exited), or a
 * report was lost, re-send CONNECTED=1 for every identity over a new
 * connection, and again at the next check until one pass gets through.
 */
int presence_tick_callback(int event, void *event_data, void *userdata);
