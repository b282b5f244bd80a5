/* fuzz_util.h: what the libFuzzer harnesses share: the entry points'
 * prototypes, the fixtures directory, handing the input to loaders that
 * take a path, and a hard assertion that libFuzzer records as a crash. */
#ifndef HMMBA_FUZZ_UTIL_H
#define HMMBA_FUZZ_UTIL_H

#include "core/eng.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* An invariant of the code under test: report and abort (a crash to
 * libFuzzer, which then saves the input). */
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s: ", __FILE__, __LINE__, #cond);        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A failed setup (fixture missing): nothing can be fuzzed. */
#define FUZZ_SETUP(cond, what, e)                                                                  \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz setup: %s: %s\n", what, (e)->msg);                               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The fixtures directory: $HMMBA_FIXTURES, else the source tree's. */
static inline const char *fuzz_fixtures(void)
{
    const char *d = getenv("HMMBA_FIXTURES");
    return d && *d ? d : FUZZ_FIXTURES;
}

/* Make `path` (cap bytes) name fixture file rel. */
static inline void fuzz_fixture_path(char *path, size_t cap, const char *rel)
{
    snprintf(path, cap, "%s/%s", fuzz_fixtures(), rel);
}

/* The input as a file, for loaders that take a path: one memfd per process
 * (no disk I/O, nothing to clean up), rewritten for each input, named
 * through /proc/self/fd so the loader opens (and may mmap) it afresh.
 * Returns the path, valid until the next call. */
static inline const char *fuzz_input_path(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("hmmba-fuzz", MFD_CLOEXEC);
        if (fd < 0) {
            perror("fuzz: memfd_create");
            abort();
        }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0) abort();
    for (size_t off = 0; off < size;) {
        ssize_t w = pwrite(fd, data + off, size - off, (off_t)off);
        if (w <= 0) abort();
        off += (size_t)w;
    }
    return path;
}

/* A message set by a failing call must be a non-empty string. */
static inline void fuzz_check_error(const eng_error *e, int rc)
{
    FUZZ_CHECK(rc < 0 && rc >= ENG_ELAST, "return code %d", rc);
    FUZZ_CHECK(e->code == rc, "err.code %d, returned %d", e->code, rc);
    FUZZ_CHECK(memchr(e->msg, '\0', sizeof e->msg) != NULL, "message not terminated");
    FUZZ_CHECK(e->msg[0] != '\0', "empty message for code %d", rc);
}

#endif
