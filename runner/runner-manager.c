/* edgehub-run's supervisor: starts the processes in order, restarts them, stops them in reverse */
#include <errno.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "proto/ipc/peer.h"
#include "proto/runtime/config.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"
#include "runner/runner-manager.h"

static void manager_start_next(Manager *m);
static void manager_stop_next(Manager *m);

static size_t manager_index(Manager *m, const Child *c) {
        for (size_t i = 0; i < m->n_children; i++)
                if (m->children[i] == c)
                        return i;
        return SIZE_MAX;
}

static void manager_begin_stop(Manager *m, int exit_code) {
        if (m->stopping)
                return;
        m->stopping = true;
        m->exit_code = exit_code;
        (void) sd_notify(false, "STOPPING=1");
        log_info("Stopping all processes");
        manager_stop_next(m);
}

/* The last process still alive gets stopped; when none is left, the loop ends. */
static void manager_stop_next(Manager *m) {
        for (size_t i = m->n_children; i > 0; i--)
                if (child_stop(m->children[i - 1]) > 0)
                        return;
        (void) sd_event_exit(m->event, m->exit_code);
}

static void on_child_ready(Child *c, void *userdata) {
        Manager *m = userdata;
        size_t i = manager_index(m, c);

        log_info("%s is ready", c->name);
        if (i < m->n_children)
                m->ready_once[i] = true;
        if (!m->stopping)
                manager_start_next(m);
}

static void on_child_exited(Child *c, const siginfo_t *si, void *userdata) {
        Manager *m = userdata;
        char status[EXIT_DESCRIPTION_MAX], delay[DELAY_DESCRIPTION_MAX];

        exit_description(status, si->si_code, si->si_status);
        if (m->stopping) {
                log_info("%s %s", c->name, status);
                manager_stop_next(m);
                return;
        }
        if (si->si_code == CLD_EXITED && si->si_status == EXIT_CONFIG) {
                log_error("%s %s (configuration error), not restarting it", c->name, status);
                manager_begin_stop(m, EXIT_CONFIG);
                return;
        }
        log_warning("%s %s, restarting in %s", c->name, status, delay_description(delay, child_schedule_restart(c)));
}

static void manager_start_child(Manager *m, Child *c) {
        char delay[DELAY_DESCRIPTION_MAX];
        int r;

        r = child_start(c);
        if (r < 0)
                log_error_errno(r, "Failed to start %s, retrying in %s: %m", c->name,
                                delay_description(delay, child_schedule_restart(c)));
}

static void manager_start_next(Manager *m) {
        if (m->n_started > 0 && !m->ready_once[m->n_started - 1])
                return;
        if (m->n_started < m->n_children) {
                manager_start_child(m, m->children[m->n_started++]);
                return;
        }
        if (m->announced)
                return;
        m->announced = true;
        (void) sd_notify(false, "READY=1\nSTATUS=All processes ready");
        fprintf(stderr, "edgehub-run: all processes ready\n");
}

static void on_notify(void *userdata, pid_t pid, const NotifyMessage *msg) {
        Manager *m = userdata;

        for (size_t i = 0; i < m->n_children; i++)
                if (m->children[i]->pid == pid && child_is_alive(m->children[i])) {
                        child_handle_notify(m->children[i], msg);
                        return;
                }
        log_debug("Notification from unknown pid %d, ignoring", (int) pid);
}

/*
 * A second signal kills what is left, but only a SIGINT at least a second
 * after the first (a person pressing Ctrl-C again): timeout(1) and the like
 * send SIGTERM to the runner and to its process group, so it arrives twice.
 */
static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        const char *name = sigabbrev_np((int) si->ssi_signo) ?: "?";
        uint64_t now;

        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        if (!m->stopping) {
                log_info("Received SIG%s", name);
                m->stop_requested_usec = now;
                manager_begin_stop(m, m->exit_code);
                return 0;
        }
        if (si->ssi_signo != SIGINT || now < m->stop_requested_usec + 1000000u) {
                log_debug("Received SIG%s while stopping, ignoring", name);
                return 0;
        }
        log_warning("Received SIG%s again, killing the remaining processes", name);
        for (size_t i = 0; i < m->n_children; i++)
                child_kill(m->children[i]);
        return 0;
}

/*
 * A daemon as the hub's user: the broker's group too (to reach broker.sock),
 * the broker's uid in its environment (proto/ipc/peer.h: what the plugin may ask).
 */
static int daemon_as_hub_user(Child *c, const ManagerSpec *spec) {
        const BrokerUser *hub = spec->hub_user, *broker = spec->broker_user;
        char env[64];
        int r;

        if (!hub || !hub->switch_user)
                return 0;
        r = child_set_user(c, hub->name, hub->uid, hub->gid);
        if (r < 0)
                return r;
        if (broker && broker->switch_user) {
                child_set_extra_group(c, broker->gid);
                snprintf(env, sizeof(env), "%s=%u", BROKER_UID_ENV, (unsigned) broker->uid);
                return child_set_env(c, env);
        }
        return 0;
}

static int manager_add_child(Manager *m, const char *name, char *const *argv, ChildReadiness readiness,
                             const char *path, const BrokerUser *user) {
        static const ChildCallbacks callbacks = { .ready = on_child_ready, .exited = on_child_exited };
        Child *c;
        int r;

        r = child_new(&c, m->event, name, argv, readiness, path, &callbacks, m);
        if (r < 0)
                return r;
        m->children[m->n_children++] = c;
        if (user)
                return child_set_user(c, user->name, user->uid, user->gid);
        return 0;
}

int manager_new(Manager **ret, const ManagerSpec *spec) {
        static const int signals[] = { SIGTERM, SIGINT, SIGHUP };
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_free_ char *notify_path = NULL, *broker_socket = NULL;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;

        r = sd_event_default(&m->event);
        if (r < 0)
                return r;
        (void) sd_event_set_watchdog(m->event, true);

        for (size_t i = 0; i < ELEMENTSOF(signals); i++) {
                r = sd_event_add_signal(m->event, &m->signal_sources[i], signals[i], on_signal, m);
                if (r < 0)
                        return r;
        }

        if (asprintf(&notify_path, "%s/notify.sock", spec->runtime_dir) < 0 ||
            asprintf(&broker_socket, "%s/%s.sock", spec->runtime_dir, SOCKET_BROKER) < 0)
                return -ENOMEM;
        r = notify_socket_new(&m->notify, m->event, notify_path, on_notify, m);
        if (r < 0)
                return r;
        /* The daemons send READY=1 as the hub's user; nobody else may (a module would fake readiness). */
        if (spec->hub_user && spec->hub_user->switch_user &&
            (chown(notify_path, spec->hub_user->uid, spec->hub_user->gid) < 0 || chmod(notify_path, 0600) < 0))
                return -errno;

        char *const auth_argv[] = { spec->paths->auth_cache, (char *) "--config", (char *) spec->config_path, NULL };
        r = manager_add_child(m, "auth-cache", auth_argv, CHILD_READY_NOTIFY, notify_path, NULL);
        if (r < 0)
                return r;
        char *const store_argv[] = { spec->paths->hub_store, (char *) "--config", (char *) spec->config_path, NULL };
        r = manager_add_child(m, "hub-store", store_argv, CHILD_READY_NOTIFY, notify_path, NULL);
        if (r < 0)
                return r;
        char *const router_argv[] = { spec->paths->method_router, (char *) "--config", (char *) spec->config_path,
                                      NULL };
        r = manager_add_child(m, "method-router", router_argv, CHILD_READY_NOTIFY, notify_path, NULL);
        if (r < 0)
                return r;
        char *const twin_argv[] = { spec->paths->twin_sync, (char *) "--config", (char *) spec->config_path, NULL };
        r = manager_add_child(m, "twin-sync", twin_argv, CHILD_READY_NOTIFY, notify_path, NULL);
        if (r < 0)
                return r;
        char *const agent_argv[] = { spec->paths->agent, (char *) "--config", (char *) spec->config_path, NULL };
        r = manager_add_child(m, "agent", agent_argv, CHILD_READY_NOTIFY, notify_path, NULL);
        if (r < 0)
                return r;
        for (size_t i = 0; i < m->n_children; i++) {
                r = daemon_as_hub_user(m->children[i], spec);
                if (r < 0)
                        return r;
        }
        /*
         * The agent starts each module as its own uid and gid (setgroups,
         * setgid, setuid), in a folder it hands to that uid (chown), and
         * stops it (kill): exactly these, nothing else of root's.
         */
        if (spec->hub_user && spec->hub_user->switch_user)
                child_set_capabilities(m->children[m->n_children - 1],
                                       (UINT64_C(1) << CAP_SETUID) | (UINT64_C(1) << CAP_SETGID) |
                                               (UINT64_C(1) << CAP_CHOWN) | (UINT64_C(1) << CAP_KILL));
        if (spec->broker_conf_path) {
                char *const broker_argv[] = { spec->paths->mosquitto, (char *) "-c", (char *) spec->broker_conf_path,
                                              NULL };
                r = manager_add_child(m, "mosquitto", broker_argv, CHILD_READY_SOCKET, broker_socket,
                                      spec->broker_user->switch_user ? spec->broker_user : NULL);
                if (r < 0)
                        return r;
                /* The optional client certificate on 8883 (broker-plugin/tls-shim.c). */
                if (spec->paths->tls_shim) {
                        r = child_set_preload(m->children[m->n_children - 1], spec->paths->tls_shim);
                        if (r < 0)
                                return r;
                }
                /* broker.sock 0770: its group (the daemons have it) may connect, nobody else. */
                child_set_umask(m->children[m->n_children - 1], 0007);
        }

        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        /* Reached with children alive only when the loop failed: don't leave them behind. */
        for (size_t i = m->n_children; i > 0; i--) {
                child_kill(m->children[i - 1]);
                child_free(m->children[i - 1]);
        }
        m->notify = notify_socket_free(m->notify);
        for (size_t i = 0; i < ELEMENTSOF(m->signal_sources); i++)
                m->signal_sources[i] = sd_event_source_disable_unref(m->signal_sources[i]);
        m->event = sd_event_unref(m->event);
        free(m);
        return NULL;
}

int manager_run(Manager *m) {
        manager_start_next(m);
        return sd_event_loop(m->event);
}
