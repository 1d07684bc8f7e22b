/* The broker's systemd watchdog: pinged from mosquitto's own loop, so a wedged broker is restarted */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/*
 * mosquitto 2.0.11 sends READY=1 but never pings a watchdog. Its main loop
 * calls every plugin's MOSQ_EVT_TICK at least every 100 ms; pinging from
 * there proves the loop still turns (a broker stuck in a callback, or in
 * a dead lock, stops pinging and systemd restarts it: WatchdogSec= of the
 * broker unit). Without WATCHDOG_USEC (edgehub-run, tests) it does nothing.
 */
typedef struct Watchdog {
        uint64_t interval_usec; /* 0: disabled */
        uint64_t last_usec;     /* CLOCK_MONOTONIC of the last ping */
} Watchdog;

void watchdog_init(Watchdog *w);
/* Pings when half the timeout passed since the last ping. */
void watchdog_tick(Watchdog *w);

int watchdog_tick_callback(int event, void *event_data, void *userdata);
