/* A scripted stand-in for auth-cache or hub-store (unit tests only) */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker-plugin/test-fake-daemon.h"
#include "proto/ipc/wire.h"
#include "proto/util/cleanup.h"

#define CHILD_DEADLINE_USEC (10u * 1000u * 1000u)

static void sleep_msec(unsigned msec) {
        struct timespec ts = { .tv_sec = msec / 1000, .tv_nsec = (long) (msec % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int reply(int fd, const FakeStep *s) {
        _cleanup_(frame_builder_deinit) FrameBuilder b = FRAME_BUILDER_NULL;

        frame_builder_init(&b, s->reply_type);
        frame_builder_add_u32(&b, WIRE_STATUS, s->status);
        if (s->identity)
                frame_builder_add_string(&b, WIRE_IDENTITY, s->identity);
        if (frame_builder_finish(&b) < 0)
                return -ENOMEM;
        return frame_send(fd, b.buf, b.len, now_usec() + CHILD_DEADLINE_USEC);
}

static _Noreturn void fake_daemon_run(int listen_fd, int report_fd, const FakeStep *steps, size_t n) {
        size_t i = 0;

        while (i < n) {
                int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                        _exit(1);
                while (i < n) {
                        uint8_t *body = NULL, header[FRAME_HEADER_SIZE];
                        size_t len;

                        if (frame_recv(fd, &body, &len, now_usec() + CHILD_DEADLINE_USEC) < 0)
                                break;
                        header[0] = (uint8_t) (len >> 24);
                        header[1] = (uint8_t) (len >> 16);
                        header[2] = (uint8_t) (len >> 8);
                        header[3] = (uint8_t) len;
                        (void) frame_send(report_fd, header, sizeof(header), now_usec() + CHILD_DEADLINE_USEC);
                        (void) frame_send(report_fd, body, len, now_usec() + CHILD_DEADLINE_USEC);
                        free(body);

                        const FakeStep *s = &steps[i++];
                        if (s->delay_msec > 0)
                                sleep_msec(s->delay_msec);
                        if (s->reply_type == 0 || reply(fd, s) < 0)
                                break;
                }
                close(fd);
        }
        /* Let the parent read the last report before the socket goes. */
        sleep_msec(200);
        _exit(0);
}

int fake_daemon_start(FakeDaemon *d, const char *path, const FakeStep *steps, size_t n) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int pair[2];

        *d = (FakeDaemon){ .pid = -1, .report_fd = -1 };
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        strcpy(d->path, path);

        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 8) < 0)
                return -errno;
        /*
         * Records, not a stream: the child may report several requests before
         * the parent reads one, and frame_recv() refuses a stream that holds
         * more than one frame. The header and the body are one record each.
         */
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
                return -errno;

        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                close(pair[0]);
                fake_daemon_run(fd, pair[1], steps, n);
        }
        close(pair[1]);
        d->pid = pid;
        d->report_fd = pair[0];
        return 0;
}

int fake_daemon_next(FakeDaemon *d, Frame *ret) {
        size_t len;
        int r;

        free(d->last);
        d->last = NULL;
        r = frame_recv(d->report_fd, &d->last, &len, now_usec() + 1000u * 1000u);
        if (r < 0)
                return r;
        return frame_parse(ret, d->last, len);
}

void fake_daemon_stop(FakeDaemon *d) {
        if (d->pid > 0) {
                (void) kill(d->pid, SIGKILL);
                (void) waitpid(d->pid, NULL, 0);
        }
        d->report_fd = safe_close(d->report_fd);
        free(d->last);
        if (d->path[0])
                (void) unlink(d->path);
        *d = (FakeDaemon){ .pid = -1, .report_fd = -1 };
}

int fake_runtime_dir(char dir[static 64]) {
        snprintf(dir, 64, "/tmp/edgehub-plugin-test-XXXXXX");
        return mkdtemp(dir) ? 0 : -errno;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

void fake_dir_remove(const char *dir) {
        (void) nftw(dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

int fake_ingest_open(IngestAppend *a, const char *dir, bool reject_when_full) {
        char path[PATH_MAX];

        snprintf(path, sizeof(path), "%s/" INGEST_DIR, dir);
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return -errno;
        return ingest_append_init(a, dir, dir, reject_when_full, false);
}

size_t fake_ingest_read(const char *dir, IngestRecord *recs, size_t max) {
        char path[PATH_MAX];
        struct dirent *de;
        size_t n = 0;

        snprintf(path, sizeof(path), "%s/" INGEST_DIR, dir);
        DIR *d = opendir(path);
        if (!d)
                return 0;
        while ((de = readdir(d)))
                if (ingest_segment_name_is_valid(de->d_name))
                        break;
        if (de)
                snprintf(path, sizeof(path), "%s/" INGEST_DIR "/%s", dir, de->d_name);
        closedir(d);
        if (!de)
                return 0;

        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        IngestReader rd = INGEST_READER_NULL;
        uint64_t off = 0;
        size_t size;
        while (fd >= 0 && n < max && ingest_reader_next(&rd, fd, off, &recs[n], &size) == 0) {
                off += size;
                n++;
        }
        ingest_reader_deinit(&rd);
        return n;
}
