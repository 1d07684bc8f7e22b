/* Modules as supervised processes: start, stop, restart with back-off, follow the deployment */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/manager.h"
#include "agent/module-env.h"
#include "agent/module-user.h"
#include "proto/ipc/auth-client.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

#define SHUTDOWN_SLACK_USEC (2u * 1000u * 1000u)

static uint64_t clock_usec(clockid_t clock) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static void set_description(Module *mod, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_description(Module *mod, const char *fmt, ...) {
        char *s = NULL;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        free(mod->description);
        mod->description = s;
}

Module *manager_find_module(Manager *m, const char *name) {
        for (size_t i = 0; i < m->n_modules; i++)
                if (strcmp(m->modules[i]->name, name) == 0)
                        return m->modules[i];
        return NULL;
}

static void shutdown_check(Manager *m) {
        if (!m->shutting_down)
                return;
        for (size_t i = 0; i < m->n_modules; i++)
                if (m->modules[i]->pid > 0)
                        return;
        (void) sd_event_exit(m->event, 0);
}

/* Drops modules that left the deployment and whose process is gone. */
static void gc_modules(Manager *m) {
        size_t j = 0;
        for (size_t i = 0; i < m->n_modules; i++) {
                Module *mod = m->modules[i];
                if (!mod->spec && mod->pid <= 0) {
                        log_info("Module '%s' removed", mod->name);
                        module_free(mod);
                        continue;
                }
                m->modules[j++] = mod;
        }
        m->n_modules = j;
}

/* The module's key from the device scope (auth-cache), as hub-store gets it for upstream links. */
int manager_fetch_module_key(Manager *m, const char *identity, char **ret) {
        int r, status;

        r = auth_client_key(&m->auth_cache, AGENT_KEY_TIMEOUT_USEC, identity, &status, ret, NULL);
        return r < 0 ? r : status;
}

static void start(Manager *m, Module *mod, bool restart);

static int on_restart_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Module *mod = userdata;
        Manager *m = mod->manager;

        mod->restart_timer = sd_event_source_disable_unref(mod->restart_timer);
        if (mod->spec && mod->spec->status == MODULE_STATUS_RUNNING && !m->shutting_down)
                start(m, mod, true);
        return 0;
}

/* Waits out the back-off, then starts again: a crash loop costs one fork per period. */
static void schedule_restart(Manager *m, Module *mod, uint64_t ran_usec) {
        if (ran_usec >= MODULE_HEALTHY_USEC)
                mod->restart_count = 0;
        mod->backoff_usec = module_backoff_next(mod->backoff_usec, ran_usec);
        mod->runtime = RUNTIME_BACKOFF;
        mod->restart_timer = sd_event_source_disable_unref(mod->restart_timer);
        int r = sd_event_add_time_relative(m->event, &mod->restart_timer, CLOCK_MONOTONIC, mod->backoff_usec, 0,
                                           on_restart_timer, mod);
        if (r < 0) {
                log_error_errno(r, "Cannot arm the restart timer of module '%s', it stays down: %m", mod->name);
                mod->runtime = RUNTIME_FAILED;
                return;
        }
        (void) sd_event_source_set_description(mod->restart_timer, "module-restart");
}

static int on_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Module *mod = userdata;
        Manager *m = mod->manager;
        bool signaled = si->si_code != CLD_EXITED;
        uint64_t ran = clock_usec(CLOCK_MONOTONIC) - mod->started_mono;

        mod->child = sd_event_source_disable_unref(mod->child);
        mod->kill_timer = sd_event_source_disable_unref(mod->kill_timer);
        mod->pid = 0;
        mod->exit_code = signaled ? 128 + si->si_status : si->si_status;
        mod->last_exit = clock_usec(CLOCK_REALTIME);
        bool stopping = mod->stopping, respawn = mod->respawn;
        mod->stopping = mod->respawn = false;

        if (signaled)
                set_description(mod, "killed by signal %d (%s)", si->si_status, strsignal(si->si_status));
        else
                set_description(mod, "exited with code %d", si->si_status);

        if (!mod->spec || m->shutting_down || stopping) {
                log_info("Module '%s' stopped (%s)", mod->name, mod->description ? mod->description : "");
                mod->runtime = RUNTIME_STOPPED;
                if (respawn && mod->spec && mod->spec->status == MODULE_STATUS_RUNNING && !m->shutting_down)
                        start(m, mod, false);
        } else if (mod->spec->status == MODULE_STATUS_RUNNING &&
                   module_policy_restarts(mod->spec->restart_policy, mod->exit_code, signaled)) {
                schedule_restart(m, mod, ran);
                log_warning("Module '%s' %s; restarting in %" PRIu64 " ms (restartPolicy %s)", mod->name,
                            mod->description ? mod->description : "exited", mod->backoff_usec / 1000u,
                            restart_policy_to_string(mod->spec->restart_policy));
        } else {
                mod->runtime = !signaled && mod->exit_code == 0 ? RUNTIME_STOPPED : RUNTIME_FAILED;
                log_warning("Module '%s' %s; not restarted (restartPolicy %s)", mod->name,
                            mod->description ? mod->description : "exited",
                            restart_policy_to_string(mod->spec->restart_policy));
        }
        gc_modules(m);
        manager_report_soon(m);
        shutdown_check(m);
        return 0;
}

/* In the child, between fork and exec: only async-signal-safe calls. uid 0: stay the agent's user. */
_Noreturn static void exec_child(const char *path, char **argv, char **envp, pid_t parent, uid_t uid,
                                 const char *dir) {
        sigset_t none;

        (void) setpgid(0, 0);
        /* Before PR_SET_PDEATHSIG, which a credential change clears. */
        if (uid != 0 && module_user_switch(uid) < 0)
                _exit(126);
        /* The agent blocks these for sd-event and ignores SIGPIPE; a module starts with the defaults. */
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        (void) signal(SIGPIPE, SIG_DFL);
        /* Modules do not outlive the agent: a restarted agent would start them twice. */
        (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
                _exit(143);
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0 && null != STDIN_FILENO) {
                (void) dup2(null, STDIN_FILENO);
                (void) close(null);
        }
        (void) close_range(3, ~0u, 0);
        if (chdir(dir ?: "/") < 0)
                _exit(127);
        execve(path, argv, envp);
        _exit(127);
}

typedef struct UidContext {
        Manager *manager;
        Module *module;
} UidContext;

/* Another module's uid, or a real account's (a module must not become a person or a system user). */
static bool uid_taken(uid_t uid, void *userdata) {
        UidContext *c = userdata;

        for (size_t i = 0; i < c->manager->n_modules; i++)
                if (c->manager->modules[i] != c->module && c->manager->modules[i]->uid == uid)
                        return true;
        return getpwuid(uid) != NULL;
}

/* The module's uid (picked once per agent run) and its folder, ready for it. */
static int prepare_user(Manager *m, Module *mod, char **ret_dir, char **ret_why) {
        UidContext ctx = { m, mod };
        int r;

        *ret_dir = NULL;
        if (!m->module_users)
                return 0;
        if (mod->uid == 0) {
                r = module_uid_pick(mod->name, &m->config->module_uids, uid_taken, &ctx, &mod->uid);
                if (r < 0) {
                        (void) asprintf(ret_why, "no free uid left in agent.module_uids");
                        return r;
                }
        }
        r = module_dir_prepare(m->config->modules_dir, mod->name, mod->uid, ret_dir);
        if (r < 0) {
                (void) asprintf(ret_why, "cannot prepare the module's folder in '%s': %s", m->config->modules_dir,
                                strerror(-r));
                return r;
        }
        return 0;
}

static int spawn(Manager *m, Module *mod, char **ret_why) {
        _cleanup_(auth_key_freep) char *key = NULL;
        _cleanup_free_ char *dir = NULL;
        _cleanup_(strv_freep) char **envp = NULL;
        _cleanup_free_ char **argv = NULL;
        const ManifestModule *spec = mod->spec;
        int r;

        r = manager_fetch_module_key(m, mod->identity, &key);
        if (r == -ENOENT || r == -EACCES) {
                (void) asprintf(ret_why, "identity '%s' is %s in the device scope: create the module identity in "
                                "IoT Hub (the scope syncs it)", mod->identity, r == -ENOENT ? "not" : "disabled");
                return r;
        }
        if (r < 0) {
                (void) asprintf(ret_why, "cannot get the key of '%s' from auth-cache: %s", mod->identity, strerror(-r));
                return r;
        }
        r = prepare_user(m, mod, &dir, ret_why);
        if (r < 0)
                return r;
        /* A new generation per process: a token signed for the last one is no use to a stale process. */
        uint8_t rnd[8];
        if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
                (void) asprintf(ret_why, "cannot draw a generation id");
                return -EIO;
        }
        for (size_t i = 0; i < sizeof(rnd); i++)
                snprintf(mod->generation_id + 2 * i, 3, "%02x", rnd[i]);
        /*
         * The key only to a module that opted in (settings.connectionString), or
         * when modules share our uid and the workload API could not tell them apart.
         */
        bool workload = m->workload && !spec->connection_string;
        ModuleEnvInput in = {
                .hub_hostname = m->config->hub_hostname,
                .gateway_hostname = m->config->agent_gateway_hostname,
                .gateway_port = m->config->tls_port,
                .device_id = m->config->edge_device_id,
                .key = workload ? NULL : key,
                .workload_path = workload ? m->workload_path : NULL,
                .generation_id = mod->generation_id,
                .ca_file = m->config->agent_ca_file,
                .path = getenv("PATH"),
                .home = dir,
                .spec = spec,
        };
        r = module_env_build(&in, &envp);
        /* Now, not at return: the fork below would copy it into the child. */
        explicit_bzero(key, strlen(key));
        if (r < 0)
                return r;
        argv = calloc(spec->n_args + 2, sizeof(char *));
        if (!argv)
                return -ENOMEM;
        argv[0] = spec->path;
        for (size_t i = 0; i < spec->n_args; i++)
                argv[i + 1] = spec->args[i];

        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0) {
                r = -errno;
                (void) asprintf(ret_why, "cannot fork: %s", strerror(-r));
                return r;
        }
        if (pid == 0)
                exec_child(spec->path, argv, envp, parent, m->module_users ? mod->uid : 0, dir);

        /* Also here, so a SIGTERM to the group right after fork cannot miss it. */
        (void) setpgid(pid, pid);
        mod->pid = pid;
        r = sd_event_add_child(m->event, &mod->child, pid, WEXITED, on_child, mod);
        if (r < 0) {
                /* Without a child source we would never learn of its exit: do not leave it unsupervised. */
                (void) kill(-pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                mod->pid = 0;
                (void) asprintf(ret_why, "cannot watch the process: %s", strerror(-r));
                return r;
        }
        (void) sd_event_source_set_description(mod->child, "module-child");
        return 0;
}

static void start(Manager *m, Module *mod, bool restart) {
        _cleanup_free_ char *why = NULL;

        if (mod->pid > 0 || !mod->spec)
                return;
        mod->restart_timer = sd_event_source_disable_unref(mod->restart_timer);
        /*
         * At boot the broker may start after us (its unit waits for the daemons):
         * a module started now would fail its first connection, and an SDK may
         * then back off for minutes. manager_start_waiting_modules() starts it.
         */
        if (!m->broker_reached) {
                mod->runtime = RUNTIME_UNKNOWN;
                set_description(mod, "waiting for the broker");
                return;
        }
        int r = spawn(m, mod, &why);
        if (r < 0) {
                set_description(mod, "%s", why ? why : "out of memory");
                log_warning("Cannot start module '%s': %s", mod->name, mod->description ? mod->description : "");
                /* Whatever the policy: it never ran, and the cause (scope, auth-cache) may pass. */
                schedule_restart(m, mod, 0);
                if (restart)
                        mod->restart_count++;
                manager_report_soon(m);
                return;
        }
        mod->started_mono = clock_usec(CLOCK_MONOTONIC);
        mod->last_start = clock_usec(CLOCK_REALTIME);
        if (restart) {
                mod->restart_count++;
                mod->last_restart = mod->last_start;
        }
        mod->runtime = RUNTIME_RUNNING;
        set_description(mod, "running");
        if (m->module_users)
                log_info("Module '%s' started (pid %d, uid %u)%s", mod->name, (int) mod->pid, (unsigned) mod->uid,
                         restart ? ", a restart" : "");
        else
                log_info("Module '%s' started (pid %d)%s", mod->name, (int) mod->pid, restart ? ", a restart" : "");
        manager_report_soon(m);
}

void manager_module_start(Manager *m, Module *mod) {
        start(m, mod, false);
}

void manager_start_waiting_modules(Manager *m) {
        m->broker_reached = true;
        for (size_t i = 0; i < m->n_modules; i++) {
                Module *mod = m->modules[i];
                if (mod->spec && mod->spec->status == MODULE_STATUS_RUNNING && mod->pid <= 0 && !mod->restart_timer &&
                    mod->runtime == RUNTIME_UNKNOWN)
                        start(m, mod, false);
        }
}

static int on_kill_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Module *mod = userdata;

        mod->kill_timer = sd_event_source_disable_unref(mod->kill_timer);
        if (mod->pid > 0) {
                log_warning("Module '%s' did not stop within %u s of SIGTERM: killing it", mod->name,
                            (unsigned) (MODULE_STOP_GRACE_USEC / 1000000u));
                (void) kill(-mod->pid, SIGKILL);
        }
        return 0;
}

void manager_module_stop(Manager *m, Module *mod) {
        mod->restart_timer = sd_event_source_disable_unref(mod->restart_timer);
        if (mod->pid <= 0 || mod->stopping)
                return;
        mod->stopping = true;
        /* The whole group: a shell's children go too. */
        if (kill(-mod->pid, SIGTERM) < 0)
                (void) kill(mod->pid, SIGTERM);
        if (sd_event_add_time_relative(m->event, &mod->kill_timer, CLOCK_MONOTONIC, MODULE_STOP_GRACE_USEC, 0,
                                       on_kill_timer, mod) >= 0)
                (void) sd_event_source_set_description(mod->kill_timer, "module-kill");
}

static int add_module(Manager *m, const ManifestModule *spec, Module **ret) {
        Module *mod;
        Module **l = realloc(m->modules, (m->n_modules + 1) * sizeof(*l));
        if (!l)
                return -ENOMEM;
        m->modules = l;
        int r = module_new(&mod, m, m->config->edge_device_id, spec);
        if (r < 0)
                return r;
        m->modules[m->n_modules++] = mod;
        *ret = mod;
        return 0;
}

void manager_reconcile(Manager *m) {
        /* Existing modules first: removed ones stop, changed ones restart, unchanged ones are left alone. */
        for (size_t i = 0; i < m->n_modules; i++) {
                Module *mod = m->modules[i];
                const ManifestModule *old = mod->spec, *new = manifest_find(m->manifest, mod->name);

                if (!new) {
                        mod->spec = NULL;
                        mod->respawn = false;
                        log_info("Module '%s' is no longer deployed: stopping it", mod->name);
                        manager_module_stop(m, mod);
                        continue;
                }
                mod->spec = new;
                if (!old || !manifest_module_same_process(old, new)) {
                        log_info("Module '%s' changed: %s", mod->name, mod->pid > 0 ? "restarting it" : "starting it");
                        mod->restart_count = 0;
                        mod->backoff_usec = 0;
                        mod->restart_timer = sd_event_source_disable_unref(mod->restart_timer);
                        if (mod->pid > 0) {
                                mod->respawn = true;
                                manager_module_stop(m, mod);
                        } else if (new->status == MODULE_STATUS_RUNNING)
                                start(m, mod, false);
                        else
                                mod->runtime = RUNTIME_STOPPED;
                        continue;
                }
                if (new->status == MODULE_STATUS_STOPPED) {
                        if (mod->pid > 0)
                                manager_module_stop(m, mod);
                        mod->restart_timer = sd_event_source_disable_unref(mod->restart_timer);
                        if (mod->pid <= 0)
                                mod->runtime = RUNTIME_STOPPED;
                } else if (old->status == MODULE_STATUS_STOPPED && mod->pid <= 0)
                        start(m, mod, false);
        }
        /* Then the new ones, in startupOrder. */
        for (size_t i = 0; i < m->manifest->n_modules; i++) {
                const ManifestModule *spec = &m->manifest->modules[i];
                Module *mod;

                if (manager_find_module(m, spec->name))
                        continue;
                if (add_module(m, spec, &mod) < 0) {
                        log_error("Out of memory adding module '%s'", spec->name);
                        continue;
                }
                if (spec->status == MODULE_STATUS_RUNNING)
                        start(m, mod, false);
                else
                        mod->runtime = RUNTIME_STOPPED;
        }
        gc_modules(m);
        manager_report_soon(m);
}

static int on_shutdown_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        log_warning("Modules still running after the stop grace: leaving anyway");
        (void) sd_event_exit(m->event, 0);
        return 0;
}

void manager_shutdown(Manager *m) {
        if (m->shutting_down)
                return;
        m->shutting_down = true;
        log_info("Stopping %zu modules", m->n_modules);
        for (size_t i = 0; i < m->n_modules; i++)
                manager_module_stop(m, m->modules[i]);
        if (sd_event_add_time_relative(m->event, &m->shutdown_timer, CLOCK_MONOTONIC,
                                       MODULE_STOP_GRACE_USEC + SHUTDOWN_SLACK_USEC, 0, on_shutdown_timer, m) < 0)
                (void) sd_event_exit(m->event, 0);
        shutdown_check(m);
}
