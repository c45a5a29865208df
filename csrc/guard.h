/*
 * guard.h - run a kernel call so that a SIGBUS (the mapped file shrank)
 * makes it return PYSCAN_FAULT instead of killing the process:
 *
 *     PYSCAN_GUARDED(kernel(...));
 *
 * expands to a sigsetjmp point, the call, and the early return.
 */
#ifndef PYSCAN_GUARD_H
#define PYSCAN_GUARD_H

#include <setjmp.h>

#include "pyscan.h" /* PYSCAN_FAULT */

struct pyscan_map;

void pyscan_guard_enter(sigjmp_buf *point);
void pyscan_guard_leave(void);

/* Install the SIGBUS handler (once); mappings are then protected outside kernel calls too. */
void pyscan_guard_install(void);
/* Make a live mapping known to the handler, and forget it before it is unmapped. */
void pyscan_guard_register(struct pyscan_map *map);
void pyscan_guard_unregister(struct pyscan_map *map);

#define PYSCAN_GUARDED(call)                \
    do {                                    \
        sigjmp_buf guard_point_;            \
        if (sigsetjmp(guard_point_, 1)) {   \
            pyscan_guard_leave();           \
            return PYSCAN_FAULT;            \
        }                                   \
        pyscan_guard_enter(&guard_point_);  \
        call;                               \
        pyscan_guard_leave();               \
    } while (0)

#endif /* PYSCAN_GUARD_H */
