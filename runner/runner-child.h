/* One supervised process: spawn, readiness, exit, restart with backoff */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "proto/util/cleanup.h"
#include "runner/runner-notify.h"
#include "runner/runner-output.h"

/*
 * What systemd does for a Type=notify service with Restart=always, cut down
 * to what edgehub-run needs. The Child only reports (ready, exited); the
 * Manager decides what follows (start the next, restart, stop everything).
 *
 * In the forked process, before exec: the signal mask is cleared, the
 * process gets its own process group (so a terminal's Ctrl-C reaches only
 * the runner, which then stops the children in order), it switches user if
 * asked, sets PR_SET_PDEATHSIG(SIGTERM) after that switch (a credential
 * change clears it), and stdout/stderr go to a pipe the runner forwards
 * with the child's name in front.
 */
#define CHILD_START_TIMEOUT_USEC (30u * 1000u * 1000u)  /* READY=1 within this */
#define CHILD_PROBE_TIMEOUT_USEC (10u * 1000u * 1000u)  /* a probed socket accepts within this */
#define CHILD_PROBE_INTERVAL_USEC (50u * 1000u)
#define CHILD_STOP_TIMEOUT_USEC (5u * 1000u * 1000u)    /* SIGTERM, then SIGKILL */

#define RESTART_DELAY_MIN_USEC (100u * 1000u)
#define RESTART_DELAY_MAX_USEC (5u * 1000u * 1000u)
#define RESTART_RESET_USEC (10u * 1000u * 1000u)        /* a run this long resets the backoff */

typedef enum ChildReadiness {
        CHILD_READY_NOTIFY, /* sends READY=1 to NOTIFY_SOCKET */
        CHILD_READY_SOCKET, /* a Unix stream socket at probe_path accepts a connection */
} ChildReadiness;

typedef enum ChildState {
        CHILD_IDLE,     /* not running, nothing scheduled */
        CHILD_STARTING, /* running, not ready yet */
        CHILD_RUNNING,  /* ready */
        CHILD_STOPPING, /* SIGTERM sent, SIGKILL armed */
        CHILD_WAITING,  /* exited, restart timer armed */
} ChildState;

typedef struct Child Child;

typedef struct ChildCallbacks {
        void (*ready)(Child *c, void *userdata);
        /* The process is gone (reaped right after this returns); the Child is CHILD_IDLE. */
        void (*exited)(Child *c, const siginfo_t *si, void *userdata);
} ChildCallbacks;

struct Child {
        sd_event *event;
        char *name;
        char **argv;
        ChildReadiness readiness;
        char *probe_path;        /* CHILD_READY_SOCKET */
        char *notify_path;       /* CHILD_READY_NOTIFY: NOTIFY_SOCKET for the child */
        bool switch_user;
        uid_t uid;
        gid_t gid;
        char *user;
        char *preload;           /* added to LD_PRELOAD (the broker's TLS shim); NULL = none */
        gid_t extra_gid;         /* a supplementary group besides the user's own; -1: none */
        uint64_t capabilities;   /* 1 << CAP_x kept across the user switch (ambient); 0: none */
        mode_t umask;            /* (mode_t) -1: the runner's */
        char *extra_env;         /* "NAME=value" added to the environment; NULL: none */

        ChildState state;
        pid_t pid;
        uint64_t started_usec;   /* CLOCK_MONOTONIC */
        uint64_t deadline_usec;  /* of the current start or stop */
        uint64_t restart_delay_usec;
        sd_event_source *exit_source;
        sd_event_source *timer;  /* readiness probe, start/stop timeout or restart: one at a time */
        OutputForwarder *output;

        ChildCallbacks callbacks;
        void *userdata;
};

/* argv is copied; argv[0] is the absolute path of the program. */
int child_new(Child **ret, sd_event *e, const char *name, char *const *argv, ChildReadiness readiness,
              const char *probe_or_notify_path, const ChildCallbacks *callbacks, void *userdata);
Child *child_free(Child *c);

/* Start the process as this user (edgehub-run is root). */
int child_set_user(Child *c, const char *user, uid_t uid, gid_t gid);
/* The child runs with path appended to LD_PRELOAD (after what the runner has, e.g. a sanitizer runtime). */
int child_set_preload(Child *c, const char *path);

/* A supplementary group, capabilities kept as ambient ones, a umask, one more environment variable. */
void child_set_extra_group(Child *c, gid_t gid);
void child_set_capabilities(Child *c, uint64_t capabilities);
void child_set_umask(Child *c, mode_t mask);
int child_set_env(Child *c, const char *assignment);

/* Forks and execs; CHILD_IDLE or CHILD_WAITING -> CHILD_STARTING. */
int child_start(Child *c);
/* SIGTERM, SIGKILL after CHILD_STOP_TIMEOUT_USEC. 1: wait for exited; 0: was not running (a pending restart is cancelled). */
int child_stop(Child *c);
/* SIGKILL now, if running. */
void child_kill(Child *c);
/* Arms the restart timer with the next backoff delay; returns the delay. */
uint64_t child_schedule_restart(Child *c);
/* A notification from this child's pid. */
void child_handle_notify(Child *c, const NotifyMessage *m);
bool child_is_alive(const Child *c);

/* The backoff: the delay before this restart; *delay_usec is the state, ran_usec how long the process lived. */
uint64_t restart_backoff(uint64_t *delay_usec, uint64_t ran_usec);

#define EXIT_DESCRIPTION_MAX 96u
/* "exited with status 1", "exited with status 9 (killed by SIGKILL)". */
char *exit_description(char buf[static EXIT_DESCRIPTION_MAX], int code, int status); /* siginfo's si_code, si_status */
#define DELAY_DESCRIPTION_MAX 32u
/* "100ms", "1.6s", "5s". */
char *delay_description(char buf[static DELAY_DESCRIPTION_MAX], uint64_t usec);

DEFINE_CLEANUP_FUNC(Child, child_free);
