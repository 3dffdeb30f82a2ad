/* The wall clock of one process, stepped: CLOCK_REALTIME (and its coarse form), gettimeofday()
 * and time() read the kernel's clock plus the whole seconds written in the file named by
 * VEIL_WALL_CLOCK_STEP_FILE, read again at every call, so a test steps the clock by writing
 * the file. The monotonic and boot clocks, sleeps and timed waits stay the kernel's own, as
 * they do when an operator or NTP steps the system clock. Loaded with LD_PRELOAD into the
 * gateway and inherited by the processes it starts; one that may not read the file (a sealed
 * job) keeps the kernel's clock.
 *
 * Debian's libfaketime 0.9.10 cannot stand in: with FAKETIME_DONT_FAKE_MONOTONIC every
 * absolute clock_nanosleep fails (EINVAL), so Python's time.sleep raises; without it the
 * monotonic clock moves too and a timed wait on a lock hangs. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long step_seconds(void) {
    const char *path = getenv("VEIL_WALL_CLOCK_STEP_FILE");
    if (path == NULL) {
        return 0;
    }
    int descriptor = open(path, O_RDONLY | O_CLOEXEC);
    if (descriptor < 0) {
        return 0;
    }
    char text[32];
    ssize_t got = read(descriptor, text, sizeof text - 1);
    close(descriptor);
    if (got <= 0) {
        return 0;
    }
    text[got] = '\0';
    return strtol(text, NULL, 10);
}

int clock_gettime(clockid_t clock, struct timespec *now) {
    static int (*kernel)(clockid_t, struct timespec *);
    if (kernel == NULL) {
        kernel = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    }
    int failed = kernel(clock, now);
    if (!failed && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE)) {
        now->tv_sec += step_seconds();
    }
    return failed;
}

int gettimeofday(struct timeval *restrict now, void *restrict zone) {
    static int (*kernel)(struct timeval *restrict, void *restrict);
    if (kernel == NULL) {
        kernel = (int (*)(struct timeval *restrict, void *restrict))dlsym(RTLD_NEXT,
                                                                          "gettimeofday");
    }
    int failed = kernel(now, zone);
    if (!failed) {
        now->tv_sec += step_seconds();
    }
    return failed;
}

time_t time(time_t *out) {
    struct timespec now;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0) {
        return (time_t)-1;
    }
    if (out != NULL) {
        *out = now.tv_sec;
    }
    return now.tv_sec;
}
