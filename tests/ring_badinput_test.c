/* Bad input: corrupt or foreign headers, out-of-bounds positions and lengths, NULL arguments.
 * Shared memory is untrusted: every case must give an error code, never a crash. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <unistd.h>

#include "test_util.h"

#define CAP 4096u

static msgr_region *g;
static char *mem;
static size_t mem_size;

static void setup(void)
{
    cr_assert_eq(msgr_region_create_anon(msgr_ring_footprint(CAP) + 4096, NULL, &g), 0);
    mem = msgr_region_base(g);
    mem_size = msgr_region_size(g);
    msgr_ring_opts o = {.capacity = CAP, .schema = 0x1234};
    msgr_ring *r;
    cr_assert_eq(msgr_ring_create(mem, mem_size, &o, &r), 0);
    msgr_ring_close(r);
}

static void teardown(void) { msgr_region_close(g); }

TestSuite(ring_badinput, .init = setup, .fini = teardown, .timeout = 30);

static int attach(void)
{
    msgr_ring *r = NULL;
    int rc = msgr_ring_attach(mem, mem_size, NULL, &r);
    msgr_ring_close(r);
    return rc;
}

/* Field offsets of the shared ring header (its documented layout, bus/ring_layout.h). */
#define OFF_MAGIC 0
#define OFF_VERSION 8
#define OFF_HDRSIZE 12
#define OFF_CAPACITY 16
#define OFF_SALT 24
#define OFF_FLAGS 40
#define OFF_TAIL 128
#define OFF_HEAD 256

static void put64(size_t off, uint64_t v) { memcpy(mem + off, &v, 8); }
static void put32(size_t off, uint32_t v) { memcpy(mem + off, &v, 4); }

Test(ring_badinput, intact_ring_attaches) { cr_assert_eq(attach(), 0); }

Test(ring_badinput, wrong_magic_is_not_a_ring)
{
    mem[OFF_MAGIC] ^= 1;
    cr_assert_eq(attach(), MSGR_ENOTMSGR);
    memset(mem, 0, 64);
    cr_assert_eq(attach(), MSGR_ENOTMSGR, "zeroed memory is not a ring");
}

Test(ring_badinput, wrong_version_is_refused)
{
    put32(OFF_VERSION, 1); /* the layout before producer slots */
    cr_assert_eq(attach(), MSGR_EVERSION);
    put32(OFF_VERSION, 3);
    cr_assert_eq(attach(), MSGR_EVERSION);
}

Test(ring_badinput, capacity_not_a_power_of_two_is_corrupt)
{
    put64(OFF_CAPACITY, CAP + 16);
    cr_assert_eq(attach(), MSGR_ECORRUPT);
    put64(OFF_CAPACITY, 0);
    cr_assert_eq(attach(), MSGR_ECORRUPT);
    put64(OFF_CAPACITY, 1ull << 63);
    cr_assert_eq(attach(), MSGR_ECORRUPT);
}

Test(ring_badinput, capacity_beyond_the_memory_is_refused)
{
    put64(OFF_CAPACITY, 1u << 20); /* a valid power of two, but the memory is ~8 KiB */
    cr_assert_eq(attach(), MSGR_ERANGE);
}

Test(ring_badinput, other_header_fields_are_checked)
{
    put32(OFF_HDRSIZE, 512);
    cr_assert_eq(attach(), MSGR_ECORRUPT);
    put32(OFF_HDRSIZE, MSGR_RING_HDR_SIZE);
    put32(OFF_FLAGS, 0x80);
    cr_assert_eq(attach(), MSGR_ECORRUPT);
    put32(OFF_FLAGS, 0);
    cr_assert_eq(attach(), 0);
}

Test(ring_badinput, positions_out_of_bounds_are_corrupt)
{
    put64(OFF_HEAD, 4096);
    put64(OFF_TAIL, 0);
    cr_assert_eq(attach(), MSGR_ECORRUPT, "head beyond tail");
    put64(OFF_HEAD, 0);
    put64(OFF_TAIL, 2 * CAP);
    cr_assert_eq(attach(), MSGR_ECORRUPT, "more pending than the capacity");
    put64(OFF_TAIL, 8);
    cr_assert_eq(attach(), MSGR_ECORRUPT, "misaligned position");
}

Test(ring_badinput, head_corrupted_while_attached_fails_the_claim)
{
    msgr_ring *r;
    cr_assert_eq(msgr_ring_attach(mem, mem_size, NULL, &r), 0);
    char buf[1000] = {0};
    int rc;
    while ((rc = msgr_ring_send(r, 1, buf, sizeof buf)) == 0)
        ;
    cr_assert_eq(rc, MSGR_EAGAIN);
    put64(OFF_HEAD, 1ull << 40); /* beyond the tail: only corruption can do that */
    cr_assert_eq(msgr_ring_send(r, 1, buf, sizeof buf), MSGR_ECORRUPT);
    msgr_ring_close(r);
}

Test(ring_badinput, record_length_out_of_bounds_is_corrupt_not_a_crash)
{
    msgr_ring *r;
    cr_assert_eq(msgr_ring_attach(mem, mem_size, NULL, &r), 0);
    cr_assert_eq(msgr_ring_send(r, 1, "abc", 3), 0);
    /* The record header sits at the start of the data area; its length is at +8. */
    char *rec = mem + MSGR_RING_HDR_SIZE;
    uint32_t lens[] = {0xffffffffu, CAP, CAP - 8, (uint32_t)msgr_ring_max_payload(CAP) + 1};
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        memcpy(rec + 8, &lens[i], 4);
        msgr_msg m;
        char out[16];
        cr_assert_eq(msgr_ring_peek(r, &m), MSGR_ECORRUPT, "len %u", lens[i]);
        cr_assert_eq(msgr_ring_recv(r, out, sizeof out, NULL), MSGR_ECORRUPT);
        cr_assert_eq(msgr_ring_poll(r, (msgr_ring_handler)abort, NULL, 4), MSGR_ECORRUPT);
    }
    msgr_ring_close(r);
}

Test(ring_badinput, garbage_in_the_data_area_is_never_taken_for_a_record)
{
    msgr_ring *r;
    cr_assert_eq(msgr_ring_attach(mem, mem_size, NULL, &r), 0);
    /* Fill the data area with bytes that look like committed records at position 0 without
     * the salt: a consumer must see an empty ring. */
    for (size_t off = 0; off < CAP; off += 16) {
        uint64_t tag = 1; /* position 0, committed, but unsalted */
        uint32_t len = 8;
        memcpy(mem + MSGR_RING_HDR_SIZE + off, &tag, 8);
        memcpy(mem + MSGR_RING_HDR_SIZE + off + 8, &len, 4);
    }
    msgr_msg m;
    cr_assert_eq(msgr_ring_peek(r, &m), MSGR_EAGAIN);
    msgr_ring_close(r);
}

Test(ring_badinput, schema_mismatch_is_refused)
{
    msgr_ring *r;
    msgr_ring_opts o = {.schema = 0x1234};
    cr_assert_eq(msgr_ring_attach(mem, mem_size, &o, &r), 0);
    cr_assert_eq(msgr_ring_schema(r), 0x1234);
    msgr_ring_close(r);
    o.schema = 0x9999;
    cr_assert_eq(msgr_ring_attach(mem, mem_size, &o, &r), MSGR_ESCHEMA);
}

Test(ring_badinput, create_rejects_bad_capacity_and_memory)
{
    msgr_ring *r;
    msgr_ring_opts o = {.capacity = 3000};
    cr_assert_eq(msgr_ring_create(mem, mem_size, &o, &r), MSGR_EINVAL, "not a power of two");
    o.capacity = 128;
    cr_assert_eq(msgr_ring_create(mem, mem_size, &o, &r), MSGR_EINVAL, "below the minimum");
    o.capacity = 1u << 20;
    cr_assert_eq(msgr_ring_create(mem, mem_size, &o, &r), MSGR_ERANGE, "memory too small");
    o.capacity = CAP;
    cr_assert_eq(msgr_ring_create(mem + 8, mem_size - 8, &o, &r), MSGR_EINVAL, "misaligned");
    o.flags = 0x10;
    cr_assert_eq(msgr_ring_create(mem, mem_size, &o, &r), MSGR_EINVAL, "unknown flag");
    o.flags = 0;
    o.size_of = 4;
    cr_assert_eq(msgr_ring_create(mem, mem_size, &o, &r), MSGR_EINVAL, "opts from the future");
    cr_assert_eq(msgr_ring_attach(mem, 100, NULL, &r), MSGR_ERANGE, "memory below a header");
    cr_assert_eq(msgr_ring_footprint(3000), 0);
    cr_assert_eq(msgr_ring_max_payload(3000), 0);
}

Test(ring_badinput, null_arguments_are_einval)
{
    msgr_ring *r;
    msgr_ring_opts o = {.capacity = CAP};
    msgr_claim c;
    msgr_msg m;
    char buf[8];
    cr_assert_eq(msgr_ring_create(NULL, mem_size, &o, &r), MSGR_EINVAL);
    cr_assert_eq(msgr_ring_create(mem, mem_size, NULL, &r), MSGR_EINVAL);
    cr_assert_eq(msgr_ring_create(mem, mem_size, &o, NULL), MSGR_EINVAL);
    cr_assert_eq(msgr_ring_attach(NULL, mem_size, NULL, &r), MSGR_EINVAL);
    cr_assert_eq(msgr_ring_attach(mem, mem_size, NULL, NULL), MSGR_EINVAL);
    cr_assert_eq(msgr_ring_claim(NULL, 8, &c), MSGR_EINVAL);
    cr_assert_eq(msgr_ring_claim_wait(NULL, 8, &c, 0), MSGR_EINVAL);
    cr_assert_eq(msgr_ring_commit(NULL, &c), MSGR_EINVAL);
    cr_assert_eq(msgr_ring_send(NULL, 1, buf, 8), MSGR_EINVAL);
    cr_assert_eq(msgr_ring_peek(NULL, &m), MSGR_EINVAL);
    cr_assert_eq(msgr_ring_peek_wait(NULL, &m, 0), MSGR_EINVAL);
    cr_assert_eq(msgr_ring_release(NULL, &m), MSGR_EINVAL);
    cr_assert_eq(msgr_ring_poll(NULL, (msgr_ring_handler)abort, NULL, 1), MSGR_EINVAL);
    cr_assert_eq(msgr_ring_recv(NULL, buf, 8, NULL), MSGR_EINVAL);
    cr_assert_eq(msgr_ring_stats_get(NULL, NULL), MSGR_EINVAL);
    cr_assert_eq(msgr_ring_attach(mem, mem_size, NULL, &r), 0);
    cr_assert_eq(msgr_ring_claim(r, 8, NULL), MSGR_EINVAL);
    cr_assert_eq(msgr_ring_commit(r, NULL), MSGR_EINVAL);
    cr_assert_eq(msgr_ring_send(r, 1, NULL, 8), MSGR_EINVAL, "NULL data with a length");
    cr_assert_eq(msgr_ring_peek(r, NULL), MSGR_EINVAL);
    cr_assert_eq(msgr_ring_release(r, NULL), MSGR_EINVAL);
    cr_assert_eq(msgr_ring_poll(r, NULL, NULL, 1), MSGR_EINVAL);
    cr_assert_eq(msgr_ring_recv(r, NULL, 8, NULL), MSGR_EINVAL);
    msgr_ring_close(r);
    msgr_ring_close(NULL); /* accepted */
}

Test(ring_badinput, attaching_to_a_name_that_does_not_exist_is_enoent)
{
    msgr_region *x;
    char name[64];
    snprintf(name, sizeof name, "msgr-no-such-bus-%d", (int)getpid());
    cr_assert_eq(msgr_region_open_shm(name, &x), MSGR_ENOENT);
    cr_assert_eq(msgr_region_open_file("/nonexistent/dir/bus", &x), MSGR_ENOENT);
}

Test(ring_badinput, every_error_code_has_a_name_and_a_message)
{
#define CHECK(name, value, text)                                                              \
    cr_assert_str_eq(msgr_strerror(MSGR_##name), text);                                       \
    cr_assert_str_eq(msgr_errname(MSGR_##name), "MSGR_" #name);
    MSGR_ERRNO_MAP(CHECK)
#undef CHECK
    cr_assert_str_eq(msgr_strerror(-424242), "unknown error");
    cr_assert_str_eq(msgr_strerror(0), "success");
}

/* MSGR_RING_CHECKSUM: a payload damaged in shared memory after its commit (a broken or
 * hostile peer) is counted and skipped, the records around it are delivered; without the flag
 * the damage is delivered as written. Also a damaged type field, and a record moved by a lap. */
Test(ring_badinput, a_checksum_ring_skips_and_counts_damaged_records)
{
    for (int with = 0; with < 2; with++) {
        msgr_region *rg;
        cr_assert_eq(msgr_region_create_anon(msgr_ring_footprint(4096), NULL, &rg), 0);
        msgr_ring_opts o = {.capacity = 4096, .flags = with ? MSGR_RING_CHECKSUM : 0};
        msgr_ring *r;
        cr_assert_eq(msgr_ring_create(msgr_region_base(rg), msgr_region_size(rg), &o, &r), 0);
        char buf[64];
        for (int i = 0; i < 4; i++) {
            memset(buf, 'a' + i, sizeof buf);
            cr_assert_eq(msgr_ring_send(r, (uint16_t)(10 + i), buf, sizeof buf), 0);
        }
        /* Damage record 1's payload and record 2's type, in place. */
        msgr_msg m;
        cr_assert_eq(msgr_ring_peek(r, &m), 0);
        size_t stride = m.size_;
        char *rec0 = (char *)m.data - 16;
        rec0[stride + 16 + 5] ^= 0x40;
        rec0[2 * stride + 12] ^= 1;
        int got = 0, seen[4] = {0};
        while (msgr_ring_recv(r, buf, sizeof buf, &m) >= 0) {
            got++;
            if (m.type >= 10 && m.type < 14)
                seen[m.type - 10] = 1;
        }
        msgr_ring_stats st;
        msgr_ring_stats_get(r, &st);
        if (with) {
            cr_assert_eq(got, 2, "only the two intact records are delivered");
            cr_assert(seen[0] && seen[3]);
            cr_assert_eq(st.records_corrupt, 2);
            cr_assert_eq(msgr_ring_max_payload(4096) - 16, 4096 / 2 - 32);
            cr_assert_eq(msgr_ring_send(r, 1, buf, 0), 0);
            cr_assert_eq(msgr_ring_recv(r, buf, sizeof buf, &m), 0, "and the ring goes on");
        } else {
            cr_assert_eq(got, 4, "without a checksum the damage is delivered");
            cr_assert_eq(st.records_corrupt, 0);
        }
        msgr_ring_close(r);
        msgr_region_close(rg);
    }
}
