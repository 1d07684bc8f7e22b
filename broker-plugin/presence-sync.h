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
