/* One supervised process: spawn, readiness, exit, restart with backoff */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"
#include "runner/runner-child.h"

extern char **environ;

static uint64_t monotonic_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static char **strv_free(char **l) {
        for (char **i = l; i && *i; i++)
                free(*i);
        free(l);
        return NULL;
}

static void strv_freep(char ***l) {
        strv_free(*l);
}

static char **strv_copy(char *const *l) {
        size_t n = 0;
        char **c;

        while (l[n])
                n++;
        c = calloc(n + 1, sizeof(char *));
        if (!c)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (!(c[i] = strdup(l[i])))
                        return strv_free(c);
        return c;
}

uint64_t restart_backoff(uint64_t *delay_usec, uint64_t ran_usec) {
        uint64_t d;

        if (*delay_usec < RESTART_DELAY_MIN_USEC || ran_usec >= RESTART_RESET_USEC)
                *delay_usec = RESTART_DELAY_MIN_USEC;
        d = *delay_usec;
        *delay_usec = d * 2 > RESTART_DELAY_MAX_USEC ? RESTART_DELAY_MAX_USEC : d * 2;
        return d;
}

char *exit_description(char buf[static EXIT_DESCRIPTION_MAX], int code, int status) {
        const char *sig = sigabbrev_np(status);

        switch (code) {
        case CLD_EXITED:
                snprintf(buf, EXIT_DESCRIPTION_MAX, "exited with status %d", status);
                break;
        case CLD_KILLED:
                snprintf(buf, EXIT_DESCRIPTION_MAX, "exited with status %d (killed by SIG%s)", status, sig ?: "?");
                break;
        case CLD_DUMPED:
                snprintf(buf, EXIT_DESCRIPTION_MAX, "exited with status %d (killed by SIG%s, core dumped)", status,
                         sig ?: "?");
                break;
        default:
                snprintf(buf, EXIT_DESCRIPTION_MAX, "exited (code %d, status %d)", code, status);
                break;
        }
        return buf;
}

char *delay_description(char buf[static DELAY_DESCRIPTION_MAX], uint64_t usec) {
        uint64_t ms = usec / 1000u;

        if (ms < 1000)
                snprintf(buf, DELAY_DESCRIPTION_MAX, "%" PRIu64 "ms", ms);
        else if (ms % 1000 == 0)
                snprintf(buf, DELAY_DESCRIPTION_MAX, "%" PRIu64 "s", ms / 1000);
        else
                snprintf(buf, DELAY_DESCRIPTION_MAX, "%" PRIu64 ".%" PRIu64 "s", ms / 1000, ms % 1000 / 100);
        return buf;
}

int child_new(Child **ret, sd_event *e, const char *name, char *const *argv, ChildReadiness readiness,
              const char *probe_or_notify_path, const ChildCallbacks *callbacks, void *userdata) {
        _cleanup_(child_freep) Child *c = NULL;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(e);
        c->readiness = readiness;
        c->uid = (uid_t) -1;
        c->gid = (gid_t) -1;
        c->extra_gid = (gid_t) -1;
        c->umask = (mode_t) -1;
        c->callbacks = *callbacks;
        c->userdata = userdata;
        c->name = strdup(name);
        c->argv = strv_copy(argv);
        if (!c->name || !c->argv)
                return -ENOMEM;
        if (readiness == CHILD_READY_SOCKET)
                c->probe_path = strdup(probe_or_notify_path);
        else
                c->notify_path = strdup(probe_or_notify_path);
        if (!c->probe_path && !c->notify_path)
                return -ENOMEM;

        *ret = TAKE_PTR(c);
        return 0;
}

Child *child_free(Child *c) {
        if (!c)
                return NULL;
        c->timer = sd_event_source_disable_unref(c->timer);
        c->exit_source = sd_event_source_disable_unref(c->exit_source);
        c->output = output_forwarder_free(c->output);
        c->event = sd_event_unref(c->event);
        strv_free(c->argv);
        free(c->name);
        free(c->probe_path);
        free(c->notify_path);
        free(c->user);
        free(c->preload);
        free(c->extra_env);
        free(c);
        return NULL;
}

int child_set_preload(Child *c, const char *path) {
        return free_and_strdup(&c->preload, path);
}

int child_set_user(Child *c, const char *user, uid_t uid, gid_t gid) {
        char *u = strdup(user);

        if (!u)
                return -ENOMEM;
        free(c->user);
        c->user = u;
        c->uid = uid;
        c->gid = gid;
        c->switch_user = true;
        return 0;
}

void child_set_extra_group(Child *c, gid_t gid) {
        c->extra_gid = gid;
}

void child_set_capabilities(Child *c, uint64_t capabilities) {
        c->capabilities = capabilities;
}

void child_set_umask(Child *c, mode_t mask) {
        c->umask = mask;
}

int child_set_env(Child *c, const char *assignment) {
        return free_and_strdup(&c->extra_env, assignment);
}

bool child_is_alive(const Child *c) {
        return c->state == CHILD_STARTING || c->state == CHILD_RUNNING || c->state == CHILD_STOPPING;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata);

static int child_arm_timer(Child *c, uint64_t usec_from_now) {
        int r;

        if (c->timer) {
                r = sd_event_source_set_time_relative(c->timer, usec_from_now);
                if (r >= 0)
                        r = sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
                return r;
        }
        r = sd_event_add_time_relative(c->event, &c->timer, CLOCK_MONOTONIC, usec_from_now, 0, on_timer, c);
        if (r >= 0)
                (void) sd_event_source_set_description(c->timer, "child-timer");
        return r;
}

static void child_disarm_timer(Child *c) {
        if (c->timer)
                (void) sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
}

/* The environment a child gets: ours, with the runner's own systemd variables replaced. */
static char **child_environment(const Child *c) {
        static const char *const drop[] = { "NOTIFY_SOCKET=", "WATCHDOG_PID=", "WATCHDOG_USEC=",
                                            "LISTEN_PID=", "LISTEN_FDS=", "LISTEN_FDNAMES=" };
        const char *preload = NULL;
        size_t n = 0, k = 0;
        char **env;

        while (environ[n])
                n++;
        /* NOTIFY_SOCKET, LD_PRELOAD, one extra variable and the NULL. */
        env = calloc(n + 4, sizeof(char *));
        if (!env)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                bool skip = false;
                for (size_t j = 0; j < ELEMENTSOF(drop); j++)
                        skip = skip || strncmp(environ[i], drop[j], strlen(drop[j])) == 0;
                if (c->preload && strncmp(environ[i], "LD_PRELOAD=", 11) == 0) {
                        preload = environ[i] + 11;
                        skip = true;
                }
                if (skip)
                        continue;
                if (!(env[k++] = strdup(environ[i])))
                        return strv_free(env);
        }
        if (c->notify_path && asprintf(&env[k++], "NOTIFY_SOCKET=%s", c->notify_path) < 0) {
                env[k - 1] = NULL;
                return strv_free(env);
        }
        /* Keep what the runner was given (a sanitizer runtime must stay first). */
        if (c->preload && asprintf(&env[k++], "LD_PRELOAD=%s%s%s", preload ?: "", preload && *preload ? " " : "",
                                   c->preload) < 0) {
                env[k - 1] = NULL;
                return strv_free(env);
        }
        if (c->extra_env && !(env[k++] = strdup(c->extra_env)))
                return strv_free(env);
        return env;
}

/*
 * In the forked process: the user's groups plus extra_gid, then gid and uid.
 * With capabilities, they survive the switch (PR_SET_KEEPCAPS) and are
 * raised as ambient ones, so the program keeps exactly those after execve()
 * as systemd's AmbientCapabilities= gives them; every other one is gone.
 */
static int child_switch_user(const Child *c) {
        gid_t groups[NGROUPS_MAX + 1];
        int n;

        if (initgroups(c->user, c->gid) < 0)
                return -1;
        if (c->extra_gid != (gid_t) -1) {
                n = getgroups(NGROUPS_MAX, groups);
                if (n < 0)
                        return -1;
                groups[n++] = c->extra_gid;
                if (setgroups((size_t) n, groups) < 0)
                        return -1;
        }
        if (c->capabilities && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
                return -1;
        if (setgid(c->gid) < 0 || setuid(c->uid) < 0)
                return -1;
        if (!c->capabilities)
                return 0;

        struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct data[2] = {};
        for (unsigned i = 0; i < 2; i++)
                data[i].effective = data[i].permitted = data[i].inheritable =
                        (uint32_t) (c->capabilities >> (32 * i));
        if (syscall(SYS_capset, &header, data) < 0)
                return -1;
        for (unsigned cap = 0; cap < 64; cap++)
                if ((c->capabilities >> cap) & 1 && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
                        return -1;
        return 0;
}

/* Runs in the forked process. The runner has no threads, so libc is safe to use here. */
_Noreturn static void child_exec(const Child *c, int out_fd, char **env, pid_t runner) {
        sigset_t none;
        int null_fd;

        if (dup2(out_fd, STDOUT_FILENO) < 0 || dup2(out_fd, STDERR_FILENO) < 0)
                _exit(EXIT_FAILURE);
        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null_fd >= 0)
                (void) dup2(null_fd, STDIN_FILENO);

        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        (void) setpgid(0, 0);

        if (c->umask != (mode_t) -1)
                (void) umask(c->umask);
        if (c->switch_user && child_switch_user(c) < 0) {
                dprintf(STDERR_FILENO, "<3>Failed to switch to user '%s': %s\n", c->user, strerror(errno));
                _exit(EXIT_FAILURE);
        }

        /* After the user switch, which resets it. If the runner died already, don't start orphaned. */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != runner)
                _exit(EXIT_FAILURE);

        execve(c->argv[0], c->argv, env);
        dprintf(STDERR_FILENO, "<3>Failed to execute %s: %s\n", c->argv[0], strerror(errno));
        _exit(EXIT_FAILURE);
}

static int on_exit_event(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Child *c = userdata;
        siginfo_t info = *si;

        /* Everything the process wrote is in the pipe now. */
        if (c->output) {
                output_forwarder_drain(c->output);
                c->output = output_forwarder_free(c->output);
        }
        c->exit_source = sd_event_source_disable_unref(c->exit_source);
        child_disarm_timer(c);
        c->state = CHILD_IDLE;
        c->pid = 0;

        c->callbacks.exited(c, &info, c->userdata);
        return 0;
}

int child_start(Child *c) {
        _cleanup_(strv_freep) char **env = NULL;
        _cleanup_close_ int rd = -1, wr = -1;
        int fds[2], r;
        pid_t runner = getpid(), pid;

        if (child_is_alive(c))
                return -EBUSY;
        child_disarm_timer(c);
        c->started_usec = monotonic_usec(); /* also when the start fails: the backoff counts from here */

        env = child_environment(c);
        if (!env)
                return -ENOMEM;
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        rd = fds[0];
        wr = fds[1];
        if (fcntl(rd, F_SETFL, O_NONBLOCK) < 0)
                return -errno;

        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0)
                child_exec(c, wr, env, runner);

        wr = safe_close(wr);
        c->pid = pid;
        c->state = CHILD_STARTING;

        r = output_forwarder_new(&c->output, c->event, TAKE_FD(rd), c->name, STDERR_FILENO);
        if (r >= 0)
                r = sd_event_add_child(c->event, &c->exit_source, pid, WEXITED, on_exit_event, c);
        if (r >= 0)
                (void) sd_event_source_set_description(c->exit_source, "child-exit");
        if (r >= 0) {
                c->deadline_usec = c->started_usec +
                        (c->readiness == CHILD_READY_SOCKET ? CHILD_PROBE_TIMEOUT_USEC : CHILD_START_TIMEOUT_USEC);
                r = child_arm_timer(c, c->readiness == CHILD_READY_SOCKET ? CHILD_PROBE_INTERVAL_USEC
                                                                         : CHILD_START_TIMEOUT_USEC);
        }
        if (r < 0) {
                /* Without an exit source nobody would reap it: take it down now. */
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                c->exit_source = sd_event_source_disable_unref(c->exit_source);
                c->output = output_forwarder_free(c->output);
                c->state = CHILD_IDLE;
                c->pid = 0;
                return r;
        }

        log_info("Started %s (pid %d)", c->name, (int) pid);
        return 0;
}

static void child_became_ready(Child *c) {
        child_disarm_timer(c);
        c->state = CHILD_RUNNING;
        c->callbacks.ready(c, c->userdata);
}

void child_handle_notify(Child *c, const NotifyMessage *m) {
        if (m->status)
                log_debug("%s: %s", c->name, m->status);
        if (m->ready && c->state == CHILD_STARTING)
                child_became_ready(c);
}

static bool socket_accepts(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;

        if (strlen(path) >= sizeof(sa.sun_path))
                return false;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        return fd >= 0 && connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0;
}

static void child_terminate(Child *c) {
        (void) kill(c->pid, SIGTERM);
        c->state = CHILD_STOPPING;
        c->deadline_usec = monotonic_usec() + CHILD_STOP_TIMEOUT_USEC;
        if (child_arm_timer(c, CHILD_STOP_TIMEOUT_USEC) < 0)
                child_kill(c); /* no timer to escalate with: don't risk waiting forever */
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Child *c = userdata;
        char d[DELAY_DESCRIPTION_MAX];
        int r;

        switch (c->state) {
        case CHILD_STARTING:
                if (c->readiness == CHILD_READY_SOCKET && socket_accepts(c->probe_path)) {
                        child_became_ready(c);
                        break;
                }
                if (monotonic_usec() < c->deadline_usec) {
                        (void) child_arm_timer(c, CHILD_PROBE_INTERVAL_USEC);
                        break;
                }
                log_error("%s did not become ready within %s, stopping it", c->name,
                          delay_description(d, c->deadline_usec - c->started_usec));
                child_terminate(c);
                break;
        case CHILD_STOPPING:
                log_warning("%s did not stop within %s, killing it", c->name,
                            delay_description(d, CHILD_STOP_TIMEOUT_USEC));
                child_kill(c);
                break;
        case CHILD_WAITING:
                r = child_start(c);
                if (r < 0) {
                        uint64_t delay = child_schedule_restart(c);
                        log_error_errno(r, "Failed to start %s, retrying in %s: %m", c->name,
                                        delay_description(d, delay));
                }
                break;
        case CHILD_IDLE:
        case CHILD_RUNNING:
                break;
        }
        return 0;
}

int child_stop(Child *c) {
        switch (c->state) {
        case CHILD_STARTING:
        case CHILD_RUNNING:
                child_terminate(c);
                return 1;
        case CHILD_STOPPING:
                return 1;
        case CHILD_WAITING:
                child_disarm_timer(c);
                c->state = CHILD_IDLE;
                return 0;
        case CHILD_IDLE:
        default:
                return 0;
        }
}

void child_kill(Child *c) {
        if (child_is_alive(c) && c->pid > 0)
                (void) kill(c->pid, SIGKILL);
}

uint64_t child_schedule_restart(Child *c) {
        uint64_t ran = c->started_usec ? monotonic_usec() - c->started_usec : 0;
        uint64_t delay = restart_backoff(&c->restart_delay_usec, ran);

        c->state = CHILD_WAITING;
        if (child_arm_timer(c, delay) < 0) {
                log_error("Failed to arm the restart timer of %s, not restarting it", c->name);
                c->state = CHILD_IDLE;
        }
        return delay;
}
