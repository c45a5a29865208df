/*
 * guard.c - survive a mapped file that shrinks while we read it.
 *
 * Touching a page of a mapping past the file's new end raises SIGBUS, which
 * would kill the process.  Kernel calls run inside a guard: the SIGBUS
 * handler jumps back to the guard's sigsetjmp point on the faulting thread,
 * and the call returns PYSCAN_FAULT instead.  A SIGBUS outside a guard goes
 * to whatever handler was installed before ours (or the default action).
 */
#define _GNU_SOURCE
#include "guard.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>

static _Thread_local sigjmp_buf *active_guard;
static struct sigaction previous_action;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;

static void on_sigbus(int signal_number, siginfo_t *info, void *context)
{
    if (active_guard != NULL) {
        sigjmp_buf *target = active_guard;
        active_guard = NULL;
        siglongjmp(*target, 1);
    }
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

void pyscan_guard_enter(sigjmp_buf *point)
{
    pthread_once(&install_once, install);
    active_guard = point;
}

void pyscan_guard_leave(void)
{
    active_guard = NULL;
}
