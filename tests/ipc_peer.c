/* A helper process for ipc_portable_test: one end of an IPC connection in a separate process.
 *
 *   ipc_peer send PATH N [fast]  connects, sends frames 0..N-1 (4 bytes each), then waits to
 *                                be killed (the test sees its death as end of stream)
 *   ipc_peer region PATH         connects, receives a region, writes its note's bytes at the
 *                                region's start, answers "done", then waits for the close
 *   ipc_peer hold PATH           connects and waits to be killed
 * Exit status: 0, or the step that failed. */
#include "test_util.h"

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    const char *role = argv[1], *path = argv[2];
    msgr_ipc_opts o = {.flags = argc > 4 && strcmp(argv[4], "fast") == 0 ? MSGR_IPC_FAST : 0};
    msgr_ipc_conn *c;
    if (msgr_ipc_connect(path, &o, &c) != 0)
        return 3;
    if (strcmp(role, "send") == 0 && argc > 3) {
        uint32_t n = (uint32_t)strtoul(argv[3], NULL, 10);
        for (uint32_t i = 0; i < n; i++)
            if (msgr_ipc_send(c, &i, sizeof i, -1) != 0)
                return 4;
        tu_sleep_forever();
    }
    if (strcmp(role, "region") == 0) {
        msgr_region *r;
        char note[64];
        int n = msgr_ipc_recv_region(c, &r, note, sizeof note, 10000000000ll);
        if (n < 0)
            return 5;
        if (msgr_region_size(r) < (size_t)n)
            return 6;
        memcpy(msgr_region_base(r), note, (size_t)n);
        msgr_region_close(r); /* the memory stays: the sender holds it */
        if (msgr_ipc_send(c, "done", 4, -1) != 0)
            return 7;
        char b[8];
        if (msgr_ipc_recv(c, b, sizeof b, 10000000000ll) != MSGR_EPIPE)
            return 8;
        msgr_ipc_close(c);
        return 0;
    }
    if (strcmp(role, "hold") == 0)
        tu_sleep_forever();
    return 9;
}
