/* messenger: the journal (see msgr/journal.h).
 *
 *   <dir>/meta                  region file: settings, next sequence number, append lock, readers
 *   <dir>/seg-<first seq, hex>  growable region files: a segment header, then records
 *
 * Segment record: crc u32 | len u32 | type u16 | pad u16 | reserved u32 | seq u64 | time u64 |
 * payload padded to 8. The crc covers everything after it in the header, and the payload.
 * A segment's `used` counts bytes of complete records; records are written, then `used` is
 * published with release, so a reader never sees a half-written record below `used`.
 */
#include "crc32c.h"
#include "durable.h"
#include "named.h"
#include "msgr/error.h"
#include "msgr/journal.h"
#include "msgr/region.h"
#include "os/os.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define META_MAGIC 0x4154454d4c4e524aull /* "JRNLMETA" */
#define SEG_MAGIC 0x474553204c4e524aull  /* "JRNL SEG" */
#define JREC_HDR 32u
#define SEG_HDR 64u
#define MAX_SEGMENTS 65536

/* A reader: a named entry whose position is the next sequence number to read (named.h). */
typedef msgr__named_entry jreader_entry;

typedef struct meta_hdr {
    _Atomic uint64_t magic;
    uint32_t version, max_readers;
    uint64_t segment_bytes;
    _Atomic uint64_t retain_bytes, retain_ns;
    _Atomic uint64_t next_seq;  /* next sequence number to append */
    _Atomic uint64_t active;    /* first sequence number of the segment being appended to */
    /* Who appends now: pid in the low 32 bits, the low 32 bits of its start time above (0:
     * unknown, judged by pid alone; files before this had 0 there); 0 when free. One word, so
     * a holder's pid and start time change together. */
    _Atomic uint64_t lock;
    uint8_t reserved[128 - 64];
} meta_hdr;
_Static_assert(sizeof(meta_hdr) == 128, "journal meta header is 128 bytes");

typedef struct seg_hdr {
    _Atomic uint64_t magic;
    uint64_t first_seq;
    _Atomic uint64_t used;  /* bytes of complete records after the header */
    _Atomic uint64_t count; /* records in the segment */
    uint8_t reserved[SEG_HDR - 32];
} seg_hdr;

typedef struct jrec {
    uint32_t crc, len;
    uint16_t type, pad;
    uint32_t reserved;
    uint64_t seq, time_ns;
} jrec;
_Static_assert(sizeof(jrec) == JREC_HDR, "journal record header is 32 bytes");

typedef struct segment {
    uint64_t first;
    msgr_region *region; /* NULL until opened */
} segment;

struct msgr_journal {
    char dir[3072];
    msgr_region *meta_region;
    meta_hdr *meta;
    jreader_entry *readers;
    segment *segs; /* sorted by first sequence number */
    uint32_t n_segs;
    int32_t pid;
    uint64_t pid_start;
    uint64_t lock_id;      /* this process in meta->lock */
    int64_t lock_timeout;  /* msgr_journal_opts.lock_timeout_ns */
};

struct msgr_journal_reader {
    msgr_journal *j;
    uint32_t entry;
    uint64_t seq;       /* next sequence number to read */
    uint64_t seg_first; /* the segment holding record `seq` (by its first sequence number:
                           indices shift when older segments are deleted), and the offset */
    uint64_t off;
};

static uint64_t rec_size(uint64_t len) { return JREC_HDR + ((len + 7) & ~7ull); }

static uint32_t rec_crc(const jrec *r, const void *payload)
{
    uint32_t c = msgr__crc32c(0, &r->len, JREC_HDR - 4);
    return msgr__crc32c(c, payload, r->len);
}

static void seg_path(const msgr_journal *j, uint64_t first, char *out, size_t n)
{
    snprintf(out, n, "%s/seg-%016llx", j->dir, (unsigned long long)first);
}

/* ---- segments ---- */

static int cmp_seg(const void *a, const void *b)
{
    uint64_t x = ((const segment *)a)->first, y = ((const segment *)b)->first;
    return x < y ? -1 : x > y;
}

/* Lists seg-* files into j->segs (keeping regions already open). */
static int scan_dir(msgr_journal *j)
{
    uint64_t firsts[1024];
    uint32_t n = 0;
    int rc = msgr_os_list_hex(j->dir, "seg-", firsts, 1024, &n);
    if (rc)
        return rc;
    segment *s = calloc(n ? n : 1, sizeof *s);
    if (!s)
        return MSGR_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        s[i].first = firsts[i];
        for (uint32_t k = 0; k < j->n_segs; k++)
            if (j->segs[k].first == firsts[i]) {
                s[i].region = j->segs[k].region;
                j->segs[k].region = NULL;
            }
    }
    for (uint32_t k = 0; k < j->n_segs; k++)
        msgr_region_close(j->segs[k].region);
    free(j->segs);
    qsort(s, n, sizeof *s, cmp_seg);
    j->segs = s;
    j->n_segs = n;
    return 0;
}

static int seg_open(msgr_journal *j, uint32_t i, seg_hdr **out)
{
    segment *s = &j->segs[i];
    if (!s->region) {
        char p[3200];
        seg_path(j, s->first, p, sizeof p);
        int rc = msgr_region_open_file(p, &s->region);
        if (rc)
            return rc;
    }
    seg_hdr *h = msgr_region_base(s->region);
    uint64_t used = atomic_load_explicit(&h->used, memory_order_acquire);
    if (SEG_HDR + used > msgr_region_size(s->region))
        msgr_region_refresh(s->region); /* another process grew it */
    uint64_t size = msgr_region_size(s->region);
    if (size < SEG_HDR || atomic_load_explicit(&h->magic, memory_order_acquire) != SEG_MAGIC ||
        h->first_seq != s->first)
        return MSGR_ECORRUPT;
    *out = h;
    return 0;
}

/* Checks the record at byte `off` of a segment: returns its size, or 0 / MSGR_ECORRUPT. */
static int64_t rec_check(seg_hdr *h, uint64_t room, uint64_t off, uint64_t seq, int crc)
{
    if (off + JREC_HDR > room)
        return 0;
    const jrec *r = (const jrec *)((char *)h + SEG_HDR + off);
    if (r->len > room - off - JREC_HDR || rec_size(r->len) > room - off || r->seq != seq)
        return MSGR_ECORRUPT;
    if (crc && r->crc != rec_crc(r, r + 1))
        return MSGR_ECORRUPT;
    return (int64_t)rec_size(r->len);
}

/* ---- meta ---- */

/* Whether the process a lock word names still runs (pid, and start time when recorded). */
static int lock_holder_alive(uint64_t word)
{
    int32_t pid = (int32_t)(uint32_t)word;
    uint32_t start = (uint32_t)(word >> 32);
    uint64_t now_start;
    if (pid <= 0 || msgr_os_proc_start(pid, &now_start))
        return 0;
    return !start || (uint32_t)now_start == start;
}

/* Takes the append lock: free, or held by a dead process (taken over). Waits while a live
 * process (or another thread of this one) holds it, up to lock_timeout: then MSGR_EBUSY. A
 * lock word from a damaged file that names a live process ends the same way, not in a hang. */
static int lock(msgr_journal *j)
{
    uint64_t deadline = 0;
    for (;;) {
        uint64_t cur = 0;
        /* acq_rel: what the previous holder wrote under the lock is visible to us; the
         * release in unlock() pairs with it. */
        if (atomic_compare_exchange_weak_explicit(&j->meta->lock, &cur, j->lock_id,
                                                  memory_order_acq_rel, memory_order_acquire))
            return 0;
        if (cur && !lock_holder_alive(cur)) { /* the holder died while appending */
            atomic_compare_exchange_strong(&j->meta->lock, &cur, 0);
            continue;
        }
        uint64_t now = msgr_os_now_ns();
        if (!deadline)
            deadline = now + (uint64_t)j->lock_timeout;
        else if (now >= deadline)
            return MSGR_EBUSY;
        /* No sleep on a word: the holder appends for microseconds, so we yield and look again;
         * a holder killed with the lock is found dead above (pid and start time) and the lock
         * taken from it, and a live one stuck longer than lock_timeout gives MSGR_EBUSY. */
        msgr_os_yield();
    }
}

static void unlock(msgr_journal *j) { atomic_store_explicit(&j->meta->lock, 0, memory_order_release); }

/* Creates the segment starting at `first` (meta lock held). */
static int seg_create(msgr_journal *j, uint64_t first)
{
    char p[3200];
    seg_path(j, first, p, sizeof p);
    /* Filled in under a temporary name, then renamed over any leftover of that name. */
    msgr_region_opts ro = {.flags = MSGR_REGION_GROWABLE | MSGR_REGION_REPLACE |
                                    MSGR_REGION_PUBLISH_LATER,
                           .max_size = j->meta->segment_bytes};
    msgr_region *g;
    int rc = msgr_region_create_file(p, 64 * 1024, &ro, &g);
    if (rc)
        return rc;
    seg_hdr *h = msgr_region_base(g);
    h->first_seq = first;
    atomic_store_explicit(&h->magic, SEG_MAGIC, memory_order_release);
    rc = msgr_region_publish(g);
    msgr_region_close(g);
    if (rc)
        return rc;
    msgr_os_sync_dir(j->dir);
    atomic_store_explicit(&j->meta->active, first, memory_order_release);
    return scan_dir(j);
}

/* Cuts the newest segment after its last valid record (a crash mid-append). Lock held. */
static int recover_active(msgr_journal *j)
{
    if (j->n_segs == 0)
        return seg_create(j, atomic_load(&j->meta->next_seq));
    seg_hdr *h;
    int rc = seg_open(j, j->n_segs - 1, &h);
    if (rc)
        return rc;
    uint64_t room = msgr_region_size(j->segs[j->n_segs - 1].region) - SEG_HDR;
    uint64_t off = 0, seq = h->first_seq, n = 0;
    int64_t sz;
    while ((sz = rec_check(h, room, off, seq, 1)) > 0) {
        off += (uint64_t)sz;
        seq++;
        n++;
    }
    atomic_store(&h->used, off);
    atomic_store(&h->count, n);
    atomic_store(&j->meta->next_seq, seq);
    atomic_store(&j->meta->active, h->first_seq);
    return 0;
}

int msgr_journal_open(const char *dir, const msgr_journal_opts *o, msgr_journal **out)
{
    if (!dir || !*dir || !out || strlen(dir) > 3000 ||
        (o && o->size_of && o->size_of < sizeof *o) ||
        (o && o->segment_bytes && o->segment_bytes < 64 * 1024))
        return MSGR_EINVAL;
    int rc = msgr_os_mkdir(dir);
    if (rc)
        return rc;
    msgr_journal *j = calloc(1, sizeof *j);
    if (!j)
        return MSGR_ENOMEM;
    snprintf(j->dir, sizeof j->dir, "%s", dir);
    j->pid = msgr_os_pid();
    msgr_os_proc_start(j->pid, &j->pid_start);
    j->lock_id = (uint32_t)j->pid | (uint64_t)(uint32_t)j->pid_start << 32;
    j->lock_timeout = o && o->lock_timeout_ns > 0 ? o->lock_timeout_ns : 10000000000ll;
    char p[3200];
    snprintf(p, sizeof p, "%s/meta", dir);
    uint32_t max_readers = o && o->max_readers ? o->max_readers : 16;
    rc = msgr_region_open_file(p, &j->meta_region);
    if (rc == MSGR_ENOENT) {
        msgr_region_opts ro = {.flags = MSGR_REGION_PUBLISH_LATER};
        rc = msgr_region_create_file(p, sizeof(meta_hdr) + 128ull * max_readers, &ro,
                                     &j->meta_region);
        if (rc == 0) {
            meta_hdr *m = msgr_region_base(j->meta_region);
            m->version = 1;
            m->max_readers = max_readers;
            m->segment_bytes = o && o->segment_bytes ? o->segment_bytes : (64u << 20);
            atomic_store_explicit(&m->magic, META_MAGIC, memory_order_release);
            if ((rc = msgr_region_publish(j->meta_region)) != 0) {
                msgr_region_close(j->meta_region);
                j->meta_region = NULL;
            }
        }
        if (rc == MSGR_EEXIST) {
            rc = msgr_region_open_file(p, &j->meta_region); /* someone else just made it */
        }
    }
    if (rc) {
        free(j);
        return rc;
    }
    j->meta = msgr_region_base(j->meta_region);
    meta_hdr *m = j->meta;
    if (atomic_load_explicit(&m->magic, memory_order_acquire) != META_MAGIC)
        rc = MSGR_ENOTMSGR;
    else if (m->version != 1)
        rc = MSGR_EVERSION;
    else if (m->max_readers == 0 || m->max_readers > 4096 || m->segment_bytes < 64 * 1024 ||
             sizeof(meta_hdr) + 128ull * m->max_readers > msgr_region_size(j->meta_region))
        rc = MSGR_ECORRUPT;
    if (rc == 0) {
        j->readers = (jreader_entry *)(m + 1);
        if (o && o->retain_bytes)
            atomic_store(&m->retain_bytes, o->retain_bytes);
        if (o && o->retain_ns)
            atomic_store(&m->retain_ns, o->retain_ns);
        if ((rc = lock(j)) == 0) {
            rc = scan_dir(j);
            if (rc == 0)
                rc = recover_active(j);
            unlock(j);
        }
    }
    if (rc) {
        msgr_journal_close(j);
        return rc;
    }
    *out = j;
    return 0;
}

void msgr_journal_close(msgr_journal *j)
{
    if (!j)
        return;
    for (uint32_t i = 0; i < j->n_segs; i++)
        msgr_region_close(j->segs[i].region);
    free(j->segs);
    msgr_region_close(j->meta_region);
    free(j);
}

uint64_t msgr_journal_next_seq(msgr_journal *j)
{
    return j ? atomic_load_explicit(&j->meta->next_seq, memory_order_acquire) : 0;
}

uint64_t msgr_journal_first_seq(msgr_journal *j)
{
    if (!j)
        return 0;
    scan_dir(j);
    return j->n_segs ? j->segs[0].first : msgr_journal_next_seq(j);
}

/* ---- appending ---- */

int msgr_journal_append(msgr_journal *j, uint16_t type, const void *data, size_t len,
                        uint64_t *seq_out)
{
    if (!j || (!data && len))
        return MSGR_EINVAL;
    uint64_t need = rec_size(len);
    if (need + SEG_HDR > j->meta->segment_bytes)
        return MSGR_EMSGSIZE;
    int rc = lock(j);
    if (rc)
        return rc;
    int rolled = 0;
    uint64_t seq = atomic_load(&j->meta->next_seq);
    for (;;) {
        if (atomic_load(&j->meta->active) != (j->n_segs ? j->segs[j->n_segs - 1].first : ~0ull))
            rc = scan_dir(j); /* another process rolled to a new segment */
        seg_hdr *h;
        if (rc || (rc = seg_open(j, j->n_segs - 1, &h)))
            break;
        msgr_region *g = j->segs[j->n_segs - 1].region;
        uint64_t used = atomic_load(&h->used);
        if (SEG_HDR + used + need > msgr_region_size(g)) {
            uint64_t want = msgr_region_size(g) * 2;
            while (want < SEG_HDR + used + need)
                want *= 2;
            if (want > j->meta->segment_bytes)
                want = j->meta->segment_bytes;
            if (SEG_HDR + used + need > want) { /* full: the next segment starts here */
                if ((rc = seg_create(j, seq)))
                    break;
                rolled = 1;
                continue;
            }
            if ((rc = msgr_region_grow(g, want))) /* MSGR_ENOSPC / MSGR_EFBIG: nothing lost */
                break;
        }
        jrec *r = (jrec *)((char *)h + SEG_HDR + used);
        r->len = (uint32_t)len;
        r->type = type;
        r->pad = 0;
        r->reserved = 0;
        r->seq = seq;
        r->time_ns = msgr_os_wall_ns();
        if (len)
            memcpy(r + 1, data, len);
        r->crc = rec_crc(r, r + 1);
        /* Release: the record is complete for whoever sees the new `used`. */
        atomic_store_explicit(&h->used, used + need, memory_order_release);
        atomic_store(&h->count, atomic_load(&h->count) + 1);
        atomic_store_explicit(&j->meta->next_seq, seq + 1, memory_order_release);
        if (seq_out)
            *seq_out = seq;
        break;
    }
    unlock(j);
    if (rc == 0 && rolled)
        msgr_journal_gc(j, NULL);
    return rc;
}

/* ---- readers ---- */

static uint64_t journal_first(void *j) { return msgr_journal_first_seq(j); }

int msgr_journal_reader_open(msgr_journal *j, const char *name, msgr_journal_reader **out)
{
    if (!j || !out || !msgr__named_ok(name))
        return MSGR_EINVAL;
    int found = msgr__named_find_or_make(j->readers, j->meta->max_readers, name, journal_first, j);
    if (found < 0)
        return found;
    jreader_entry *e = &j->readers[found];
    int rc = msgr__named_own(e, j->pid, j->pid_start);
    if (rc)
        return rc;
    msgr_journal_reader *rd = calloc(1, sizeof *rd);
    if (!rd) {
        msgr__named_release(e);
        return MSGR_ENOMEM;
    }
    rd->j = j;
    rd->entry = (uint32_t)found;
    rc = msgr_journal_seek(rd, msgr__durable_get(&e->pos));
    if (rc) {
        msgr_journal_reader_close(rd);
        return rc;
    }
    *out = rd;
    return 0;
}

void msgr_journal_reader_close(msgr_journal_reader *rd)
{
    if (!rd)
        return;
    msgr__named_release(&rd->j->readers[rd->entry]);
    free(rd);
}

/* Positions the reader on record `seq` (or the end). */
int msgr_journal_seek(msgr_journal_reader *rd, uint64_t seq)
{
    if (!rd)
        return MSGR_EINVAL;
    msgr_journal *j = rd->j;
    int rc = scan_dir(j);
    if (rc)
        return rc;
    if (j->n_segs == 0)
        return MSGR_ECORRUPT;
    if (seq < j->segs[0].first)
        seq = j->segs[0].first; /* older history is gone */
    uint32_t i = 0;
    while (i + 1 < j->n_segs && j->segs[i + 1].first <= seq)
        i++;
    seg_hdr *h;
    if ((rc = seg_open(j, i, &h)))
        return rc;
    uint64_t used = atomic_load_explicit(&h->used, memory_order_acquire), off = 0;
    uint64_t room = msgr_region_size(j->segs[i].region) - SEG_HDR;
    if (used > room)
        return MSGR_ECORRUPT;
    uint64_t s = h->first_seq;
    while (s < seq && off < used) {
        int64_t sz = rec_check(h, used, off, s, 0);
        if (sz <= 0)
            return MSGR_ECORRUPT;
        off += (uint64_t)sz;
        s++;
    }
    rd->seg_first = j->segs[i].first;
    rd->off = off;
    rd->seq = s;
    return 0;
}

/* Index of the reader's segment in j->segs, or -1 if it is gone. */
static int64_t reader_seg(msgr_journal_reader *rd)
{
    for (uint32_t i = 0; i < rd->j->n_segs; i++)
        if (rd->j->segs[i].first == rd->seg_first)
            return i;
    return -1;
}

int msgr_journal_next(msgr_journal_reader *rd, msgr_msg *m)
{
    if (!rd || !m)
        return MSGR_EINVAL;
    msgr_journal *j = rd->j;
    for (;;) {
        seg_hdr *h;
        int64_t i = reader_seg(rd);
        if (i < 0) { /* its segment was deleted (a seek to a position retention let go) */
            int rc = msgr_journal_seek(rd, rd->seq);
            if (rc || (i = reader_seg(rd)) < 0)
                return rc ? rc : MSGR_ECORRUPT;
        }
        int rc = seg_open(j, (uint32_t)i, &h);
        if (rc)
            return rc;
        /* A1: acquire pairs with the release of `used` in msgr_journal_append(). */
        uint64_t used = atomic_load_explicit(&h->used, memory_order_acquire);
        uint64_t room = msgr_region_size(j->segs[i].region) - SEG_HDR;
        if (used > room)
            return MSGR_ECORRUPT;
        if (rd->off < used) {
            int64_t sz = rec_check(h, used, rd->off, rd->seq, 1);
            if (sz <= 0)
                return MSGR_ECORRUPT;
            const jrec *r = (const jrec *)((char *)h + SEG_HDR + rd->off);
            m->data = r + 1;
            m->len = r->len;
            m->type = r->type;
            m->source = 0;
            m->pos_ = r->seq;
            m->size_ = (uint32_t)sz;
            rd->off += (uint64_t)sz;
            rd->seq++;
            return 0;
        }
        /* End of this segment: is there a newer one? */
        if ((uint32_t)i + 1 >= j->n_segs) {
            if ((rc = scan_dir(j)))
                return rc;
            if ((i = reader_seg(rd)) < 0)
                continue;
        }
        if ((uint32_t)i + 1 >= j->n_segs || j->segs[i + 1].first != rd->seq)
            return MSGR_EAGAIN;
        rd->seg_first = j->segs[i + 1].first;
        rd->off = 0;
    }
}

uint64_t msgr_journal_seq(const msgr_msg *m) { return m ? m->pos_ : 0; }

int msgr_journal_seek_time(msgr_journal_reader *rd, uint64_t wall_ns)
{
    int rc = msgr_journal_seek(rd, 0);
    if (rc)
        return rc;
    for (;;) {
        uint64_t seg = rd->seg_first, off = rd->off, seq = rd->seq;
        msgr_msg m;
        rc = msgr_journal_next(rd, &m);
        if (rc == MSGR_EAGAIN)
            return 0; /* nothing that recent: at the end */
        if (rc)
            return rc;
        if (((const jrec *)m.data - 1)->time_ns >= wall_ns) {
            rd->seg_first = seg; /* step back: the next read returns this record */
            rd->off = off;
            rd->seq = seq;
            return 0;
        }
    }
}

int msgr_journal_ack(msgr_journal_reader *rd, const msgr_msg *m)
{
    if (!rd || !m || m->pos_ >= rd->seq)
        return MSGR_EINVAL;
    msgr__durable_set(&rd->j->readers[rd->entry].pos, m->pos_ + 1);
    return 0;
}

/* ---- retention ---- */

int msgr_journal_gc(msgr_journal *j, uint32_t *deleted)
{
    if (!j)
        return MSGR_EINVAL;
    uint32_t n = 0;
    int rc = lock(j);
    if (rc)
        return rc;
    rc = scan_dir(j);
    uint64_t slowest = atomic_load(&j->meta->next_seq);
    for (uint32_t i = 0; i < j->meta->max_readers; i++)
        if (atomic_load(&j->readers[i].state) == 2) {
            uint64_t p = msgr__durable_get(&j->readers[i].pos);
            slowest = p < slowest ? p : slowest;
        }
    uint64_t retain_bytes = atomic_load(&j->meta->retain_bytes);
    uint64_t retain_ns = atomic_load(&j->meta->retain_ns), now = msgr_os_wall_ns();
    /* Oldest first; never the newest (being appended to). */
    while (rc == 0 && j->n_segs > 1) {
        seg_hdr *h, *next;
        if (seg_open(j, 0, &h) || seg_open(j, 1, &next))
            break;
        uint64_t last = j->segs[1].first; /* one past this segment's last record */
        if (last > slowest)
            break; /* some reader still needs it */
        uint64_t newer = 0;
        for (uint32_t i = 1; i < j->n_segs; i++) {
            seg_hdr *s;
            if (seg_open(j, i, &s) == 0)
                newer += atomic_load(&s->used);
        }
        /* Its newest record is the one just before the next segment's first. */
        const jrec *first_next = (const jrec *)((char *)next + SEG_HDR);
        uint64_t newest_time = atomic_load(&next->used) ? first_next->time_ns : now;
        int by_size = retain_bytes && newer >= retain_bytes;
        int by_age = retain_ns && newest_time + retain_ns < now;
        if (!by_size && !by_age)
            break;
        char p[3200];
        seg_path(j, j->segs[0].first, p, sizeof p);
        msgr_region_close(j->segs[0].region);
        j->segs[0].region = NULL;
        if (msgr_os_unlink(p) != 0)
            break;
        n++;
        msgr_os_sync_dir(j->dir);
        rc = scan_dir(j);
    }
    unlock(j);
    if (deleted)
        *deleted = n;
    return rc;
}
