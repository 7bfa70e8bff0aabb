/*
 * VM-test helper, run inside the booted image (built static by the test and
 * copied in; never installed in the image, which has no interpreter):
 *
 *   holdconns N SECONDS   open N connections to 127.0.0.1:80, send each an
 *                         unfinished request head (so nowd holds it, within
 *                         its 5 s idle limit), print "opened N OPEN_S" once
 *                         all are open, hold them SECONDS more, exit.
 *
 * The test reads nowd.service's cgroup before and while they are held.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    static const char head[] = "GET /now HTTP/1.1\r\nHost: nowd\r\n";
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(80) };
    int n, held = 0;
    unsigned hold_s;
    double t0;

    if (argc != 3 || (n = atoi(argv[1])) <= 0 || (hold_s = (unsigned)atoi(argv[2])) == 0) {
        fprintf(stderr, "usage: holdconns N SECONDS\n");
        return 2;
    }
    struct rlimit fds = { .rlim_cur = (rlim_t)n + 64, .rlim_max = (rlim_t)n + 64 };
    if (setrlimit(RLIMIT_NOFILE, &fds) != 0) {
        perror("setrlimit");
        return 1;
    }
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    t0 = now_s();
    for (; held < n; held++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);

        if (s < 0 || connect(s, (struct sockaddr *)&to, sizeof to) != 0 ||
            send(s, head, sizeof head - 1, 0) != (ssize_t)(sizeof head - 1)) {
            perror("connection");
            break;
        }
    }
    printf("opened %d %.2f\n", held, now_s() - t0);
    fflush(stdout);
    sleep(hold_s);
    return held == n ? 0 : 1;
}
