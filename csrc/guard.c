/*
 * guard.c - survive a mapped file that shrinks while it is read.
 *
 * Touching a page of a mapping past the file's new end raises SIGBUS, which
 * would kill the process.  Two cases, one handler:
 *
 * - Inside a kernel call (PYSCAN_GUARDED): the handler jumps back to the
 *   guard's sigsetjmp point on the faulting thread and the call returns
 *   PYSCAN_FAULT.
 * - Anywhere else (Python reading the mapping through numpy or struct, the
 *   string walk): the handler maps zero-filled anonymous pages over the rest
 *   of the mapping, marks it faulted and returns, so the read completes with
 *   zeros.  Whoever reads a mapping checks pyscan_map_faulted() before it
 *   trusts or reports what it read (pyscan.native.Mapping.check).
 *
 * A SIGBUS that hits no live pyscan mapping (or was sent with kill) goes to
 * whatever handler was installed before ours, or takes the default action.
 */
#define _GNU_SOURCE
#include "guard.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pyscan.h"

static _Thread_local sigjmp_buf *active_guard;
static struct sigaction previous_action;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;

/*
 * The live mappings, for the handler to find the one a fault hit.  Slots are
 * claimed and cleared with atomics only: the handler may run at any moment on
 * any thread and takes no lock.  A mapping that finds no free slot is simply
 * not protected outside kernel calls (4,096 open models is far past any use).
 */
#define LIVE_SLOTS 4096
static pyscan_map *live_maps[LIVE_SLOTS];

void pyscan_guard_register(pyscan_map *map)
{
    for (size_t i = 0; i < LIVE_SLOTS; i++) {
        pyscan_map *expected = NULL;
        if (__atomic_compare_exchange_n(&live_maps[i], &expected, map, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            return;
    }
}

void pyscan_guard_unregister(pyscan_map *map)
{
    for (size_t i = 0; i < LIVE_SLOTS; i++) {
        pyscan_map *expected = map;
        if (__atomic_compare_exchange_n(&live_maps[i], &expected, NULL, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            return;
    }
}

/* Replace the rest of the mapping that holds address with zero pages; 1 if it was ours. */
static int fill_with_zeros(const void *address)
{
    uintptr_t at = (uintptr_t)address;
    for (size_t i = 0; i < LIVE_SLOTS; i++) {
        pyscan_map *map = __atomic_load_n(&live_maps[i], __ATOMIC_SEQ_CST);
        if (map == NULL || map->base == NULL)
            continue;
        uintptr_t base = (uintptr_t)map->base;
        if (at < base || at - base >= map->size)
            continue;
        uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
        uintptr_t start = at / page * page;
        uintptr_t end = (base + (uintptr_t)map->size + page - 1) / page * page;
        /* mmap is a plain system call on Linux: safe here in practice, though POSIX does not list it. */
        int prot = map->writable ? PROT_READ | PROT_WRITE : PROT_READ; /* as the mapping it replaces */
        void *zeros = mmap((void *)start, end - start, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (zeros == MAP_FAILED)
            return 0;
        __atomic_store_n(&map->faulted, 1, __ATOMIC_SEQ_CST);
        return 1;
    }
    return 0;
}

static void on_sigbus(int signal_number, siginfo_t *info, void *context)
{
    if (active_guard != NULL) {
        sigjmp_buf *target = active_guard;
        active_guard = NULL;
        siglongjmp(*target, 1);
    }
    /* si_code > 0: raised by the kernel for a real fault (not kill()), so si_addr means something. */
    if (info != NULL && info->si_code > 0 && fill_with_zeros(info->si_addr))
        return; /* the faulting read runs again and now finds zeros */
    /* Not a fault of ours: behave as if we had never been installed. */
    if (previous_action.sa_flags & SA_SIGINFO) {
        previous_action.sa_sigaction(signal_number, info, context);
    } else if (previous_action.sa_handler != SIG_IGN && previous_action.sa_handler != SIG_DFL) {
        previous_action.sa_handler(signal_number);
    } else {
        sigaction(SIGBUS, &previous_action, NULL);
        raise(signal_number);
    }
}

static void install(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO | SA_NODEFER; /* NODEFER: a later fault on this thread is caught too */
    sigemptyset(&action.sa_mask);
    sigaction(SIGBUS, &action, &previous_action);
}

void pyscan_guard_install(void)
{
    pthread_once(&install_once, install);
}

void pyscan_guard_enter(sigjmp_buf *point)
{
    pyscan_guard_install();
    active_guard = point;
}

void pyscan_guard_leave(void)
{
    active_guard = NULL;
}

int pyscan_map_faulted(const pyscan_map *map)
{
    return __atomic_load_n(&map->faulted, __ATOMIC_SEQ_CST);
}
