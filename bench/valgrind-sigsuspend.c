/* Preloaded into dsar under valgrind by `make bench PROFILE=1` (bench.py), and nowhere else.
 *
 * Swift's async main parks the main thread in libdispatch's _dispatch_sigsuspend(), which passes
 * sigsuspend() a mask that is `static const` (read-only memory). Valgrind 3.19 (Debian 12) rewrites
 * the mask in place before the syscall, faults on that page and dies with "VALGRIND INTERNAL ERROR:
 * Valgrind received a signal 11 (SIGSEGV)". This sigsuspend() hands the kernel a writable copy of
 * the same mask; the behaviour of the program is unchanged. */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

int sigsuspend(const sigset_t *mask) {
    sigset_t copy = *mask;
    return (int)syscall(SYS_rt_sigsuspend, &copy, sizeof(unsigned long));
}
