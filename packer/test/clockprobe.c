/*
 * Boot-test helper, run inside the booted image under nowd's own sandbox
 * (a copy of nowd.service with this binary as ExecStart). Never installed in
 * the image.
 *
 *   clockprobe clock      adjtimex(2) and clock_adjtime(2), read-only, must
 *                         work, a write must fail with EPERM; prints the
 *                         capability sets it ran with.
 *   clockprobe bind PORT  try to bind [::]:PORT; prints the result.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <sys/timex.h>
#include <unistd.h>

static void print_caps(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];

    if (!f)
        return;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "Cap", 3) || !strncmp(line, "Uid:", 4) ||
            !strncmp(line, "NoNewPrivs:", 11) || !strncmp(line, "Seccomp:", 8))
            fputs(line, stdout);
    fclose(f);
}

/* One raw system call, read-only then a write. */
static int probe_call(const char *name, int use_clock_adjtime)
{
    struct timex tx = { .modes = 0 };
    long state = use_clock_adjtime ? syscall(SYS_clock_adjtime, CLOCK_REALTIME, &tx)
                                   : syscall(SYS_adjtimex, &tx);

    if (state < 0) {
        printf("%s read: FAIL %s\n", name, strerror(errno));
        return 1;
    }
    printf("%s read: ok state=%ld synchronized=%s maxerror_us=%ld esterror_us=%ld\n", name,
           state, (tx.status & STA_UNSYNC) ? "no" : "yes", tx.maxerror, tx.esterror);

    /* Writes back the maximum error just read: no change even if allowed. */
    tx.modes = ADJ_MAXERROR;
    state = use_clock_adjtime ? syscall(SYS_clock_adjtime, CLOCK_REALTIME, &tx)
                              : syscall(SYS_adjtimex, &tx);
    if (state < 0 && errno == EPERM) {
        printf("%s write: refused with EPERM\n", name);
        return 0;
    }
    printf("%s write: FAIL, not refused with EPERM (%s)\n", name,
           state < 0 ? strerror(errno) : "allowed");
    return 1;
}

static int probe_clock(void)
{
    int failed;

    print_caps();
    failed = probe_call("adjtimex", 0);
    failed |= probe_call("clock_adjtime", 1);
    return failed;
}

static int probe_bind(int port)
{
    struct sockaddr_in6 addr = { .sin6_family = AF_INET6, .sin6_port = htons(port),
                                 .sin6_addr = IN6ADDR_ANY_INIT };
    int one = 1;
    int fd = socket(AF_INET6, SOCK_STREAM, 0);

    print_caps();
    if (fd < 0) {
        printf("bind [::]:%d: socket failed: %s\n", port, strerror(errno));
        return 1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        printf("bind [::]:%d: %s\n", port, strerror(errno));
        return 1;
    }
    printf("bind [::]:%d: ok\n", port);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 2 && !strcmp(argv[1], "clock"))
        return probe_clock();
    if (argc == 3 && !strcmp(argv[1], "bind"))
        return probe_bind(atoi(argv[2]));
    fprintf(stderr, "usage: clockprobe clock | clockprobe bind PORT\n");
    return 2;
}
