/* A device or module went away: tell hub-store */
#pragma once

/* MOSQ_EVT_DISCONNECT; userdata is the Plugin. */
int disconnect_callback(int event, void *event_data, void *userdata);
