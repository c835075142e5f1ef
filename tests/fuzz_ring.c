/* libFuzzer target: a ring's shared memory damaged at will (another process may scribble on
 * it). A valid ring (capacity 4096, records of assorted sizes, some consumed, one wrapped) is
 * made once as a template; each input patches it: bytes 0-1 give an offset (little-endian,
 * modulo the ring's footprint), the rest is written there. Attaching, peeking, polling,
 * releasing, receiving and sending must never crash or read outside the ring under
 * ASan/UBSan (make fuzz). */
#include <messenger.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { CAP = 4096 };
static uint8_t *tmpl, *mem;
static size_t foot;

static void make_template(void)
{
    foot = msgr_ring_footprint(CAP);
    tmpl = aligned_alloc(64, foot);
    mem = aligned_alloc(64, foot);
    if (!tmpl || !mem)
        abort();
    memset(tmpl, 0, foot);
    msgr_ring_opts o = {.capacity = CAP};
    msgr_ring *r;
    if (msgr_ring_create(tmpl, foot, &o, &r))
        abort();
    char buf[600];
    memset(buf, 0x5a, sizeof buf);
    for (int i = 0; i < 40; i++) { /* several laps: padding at the end, records wrapping */
        if (msgr_ring_send(r, (uint16_t)i, buf, (size_t)(i * 37 % 600)) == 0 && i % 3) {
            char out[600];
            msgr_ring_recv(r, out, sizeof out, NULL);
        }
    }
    msgr_ring_close(r);
}

static int count(void *arg, const msgr_msg *m)
{
    /* Touch every payload byte: ASan reports a record that reaches outside the ring. */
    const uint8_t *p = m->data;
    unsigned sum = 0;
    for (uint32_t i = 0; i < m->len; i++)
        sum += p[i];
    *(unsigned *)arg += sum;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!tmpl)
        make_template();
    if (size < 2)
        return 0;
    memcpy(mem, tmpl, foot);
    size_t off = ((size_t)data[0] | (size_t)data[1] << 8) % foot, n = size - 2;
    if (n > foot - off)
        n = foot - off;
    memcpy(mem + off, data + 2, n);
    msgr_ring *r;
    if (msgr_ring_attach(mem, foot, NULL, &r))
        return 0;
    unsigned sum = 0;
    msgr_msg m;
    for (int i = 0; i < 64 && msgr_ring_peek(r, &m) == 0; i++) {
        count(&sum, &m);
        msgr_ring_release(r, &m);
    }
    msgr_ring_poll(r, count, &sum, 64);
    char out[CAP];
    msgr_ring_recv(r, out, sizeof out, NULL);
    char in[100] = {0};
    msgr_ring_send(r, 1, in, sizeof in);
    msgr_claim c;
    if (msgr_ring_claim(r, 200, &c) == 0) {
        memset(c.data, 1, 200);
        msgr_ring_commit(r, &c);
    }
    msgr_ring_poll(r, count, &sum, 64);
    msgr_ring_close(r);
    return (int)(sum & 0); /* sum keeps the reads from being optimised away */
}
