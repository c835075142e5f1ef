// bench_compare only: see atomic_queue_adapter.h. Queues as the library's README recommends
// for one producer and one consumer: the SPSC flag set, fixed capacity, busy-waiting callers.
#include "atomic_queue_adapter.h"

#include <atomic_queue/atomic_queue.h>

#include <cstdint>
#include <cstring>
#include <new>

namespace {

constexpr unsigned DEPTH = 1024;
constexpr unsigned BIG_DEPTH = 32; // pointer queues for messages over 4 KiB: slabs stay small

// Pointers never null: 0 is the empty-slot marker (NIL).
template <unsigned D>
using PtrQueueOf = atomic_queue::AtomicQueue<std::uintptr_t, D, std::uintptr_t{0}, true, true,
                                             false, true>;
using PtrQueue = PtrQueueOf<DEPTH>;
using BigPtrQueue = PtrQueueOf<BIG_DEPTH>;
constexpr std::size_t BIG = 1; // aq_queue::size of a BigPtrQueue

template <std::size_t N> struct Msg {
    unsigned char b[N];
};
template <std::size_t N>
using ValQueue = atomic_queue::AtomicQueue2<Msg<N>, DEPTH, true, true, false, true>;

} // namespace

// Which queue is behind the handle: a switch, not a virtual call, so the adapter adds one
// predictable branch and nothing else to each operation.
struct aq_queue {
    std::size_t size; // 0: PtrQueue, BIG: BigPtrQueue, else ValQueue<size>
    void *q;
};

namespace {

template <std::size_t N> bool push_val(void *q, const void *entry)
{
    return static_cast<ValQueue<N> *>(q)->try_push(*static_cast<const Msg<N> *>(entry));
}

template <std::size_t N> bool pop_val(void *q, void *out)
{
    return static_cast<ValQueue<N> *>(q)->try_pop(*static_cast<Msg<N> *>(out));
}

template <class Q> void *make() { return new (std::nothrow) Q; }

} // namespace

static void free_queue(aq_queue *h)
{
    switch (h->size) {
    case 0: delete static_cast<PtrQueue *>(h->q); break;
    case BIG: delete static_cast<BigPtrQueue *>(h->q); break;
    case 8: delete static_cast<ValQueue<8> *>(h->q); break;
    case 64: delete static_cast<ValQueue<64> *>(h->q); break;
    case 512: delete static_cast<ValQueue<512> *>(h->q); break;
    default: delete static_cast<ValQueue<4096> *>(h->q); break;
    }
}

extern "C" aq_queue *aq_new(std::size_t size, int by_value)
{
    void *q;
    if (!by_value)
        size = size > 4096 ? BIG : 0;
    switch (size) {
    case 0: q = make<PtrQueue>(); break;
    case BIG: q = make<BigPtrQueue>(); break;
    case 8: q = make<ValQueue<8>>(); break;
    case 64: q = make<ValQueue<64>>(); break;
    case 512: q = make<ValQueue<512>>(); break;
    case 4096: q = make<ValQueue<4096>>(); break;
    default: return nullptr;
    }
    if (!q)
        return nullptr;
    aq_queue *h = new (std::nothrow) aq_queue{size, q};
    if (!h) {
        aq_queue t{size, q};
        free_queue(&t);
    }
    return h;
}

extern "C" int aq_try_push(aq_queue *h, const void *entry)
{
    switch (h->size) {
    case 0: return static_cast<PtrQueue *>(h->q)->try_push(reinterpret_cast<std::uintptr_t>(entry));
    case BIG:
        return static_cast<BigPtrQueue *>(h->q)->try_push(reinterpret_cast<std::uintptr_t>(entry));
    case 8: return push_val<8>(h->q, entry);
    case 64: return push_val<64>(h->q, entry);
    case 512: return push_val<512>(h->q, entry);
    default: return push_val<4096>(h->q, entry);
    }
}

extern "C" int aq_try_pop(aq_queue *h, void *out)
{
    switch (h->size) {
    case 0:
    case BIG: {
        std::uintptr_t v;
        bool ok = h->size ? static_cast<BigPtrQueue *>(h->q)->try_pop(v)
                          : static_cast<PtrQueue *>(h->q)->try_pop(v);
        if (ok)
            *static_cast<void **>(out) = reinterpret_cast<void *>(v);
        return ok;
    }
    case 8: return pop_val<8>(h->q, out);
    case 64: return pop_val<64>(h->q, out);
    case 512: return pop_val<512>(h->q, out);
    default: return pop_val<4096>(h->q, out);
    }
}

extern "C" void aq_free(aq_queue *h)
{
    if (h) {
        free_queue(h);
        delete h;
    }
}

extern "C" unsigned aq_depth(const aq_queue *h) { return h->size == BIG ? BIG_DEPTH : DEPTH; }
