/* SPDX-License-Identifier: MIT */
/*
 * LD_PRELOAD library for tools/failmalloc.sh: makes exactly one allocation of the process
 * fail, the FAILMALLOC_NTH-th call (1-based) of malloc, calloc, realloc, reallocarray,
 * posix_memalign or aligned_alloc, whoever the caller is (our code, libc, jansson, OpenSSL).
 * With FAILMALLOC_NTH unset or 0 nothing fails. With FAILMALLOC_COUNT set, the number of
 * calls is written to stderr at exit as "failmalloc: calls N", so the script knows how many
 * runs cover every allocation of a program. FAILMALLOC_BACKTRACE=1 prints where the failed
 * call came from.
 *
 * Only allocations made for the program itself count: the program's own code must appear
 * within OWN_DEPTH frames above the allocation (our malloc, or strdup, asprintf, getline,
 * fopen, json_object, EVP_MD_CTX_new... called by it). Deeper ones, made by a library for its
 * own purposes, never fail: OpenSSL 3.0 crashes on a failed allocation in its lazy set-up
 * (a NULL lock in CRYPTO_THREAD_read_lock) and jansson asserts in its lexer, and neither is
 * ours to fix. FAILMALLOC_ALL=1 counts every allocation.
 *
 * The real functions come from dlsym(RTLD_NEXT); dlsym may itself call calloc before that is
 * known, which a small static arena serves. Single-threaded programs only (the counter is
 * not atomic), which all of ours are.
 */
#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <execinfo.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void (*real_free)(void *);

#define OWN_DEPTH 4
#define MAX_SEGMENTS 8

static unsigned long calls, nth;
static int resolving, counting_all, in_backtrace;
/* the program's own executable segments */
static uintptr_t seg_lo[MAX_SEGMENTS], seg_hi[MAX_SEGMENTS];
static int n_segs;
static unsigned char arena[8192] __attribute__((aligned(16)));
static size_t arena_used;

/* dl_iterate_phdr visits the program itself first (its name is empty) */
static int find_program(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	(void)data;
	for (int i = 0; i < info->dlpi_phnum && n_segs < MAX_SEGMENTS; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		seg_lo[n_segs] = info->dlpi_addr + ph->p_vaddr;
		seg_hi[n_segs] = seg_lo[n_segs] + ph->p_memsz;
		n_segs++;
	}
	return 1; /* stop after the first object */
}

static int for_the_program(void);

static void resolve(void)
{
	const char *v;

	if (real_malloc || resolving)
		return;
	resolving = 1;
	/* ISO C has no cast from an object pointer to a function pointer; dlsym's way */
	*(void **)&real_calloc = dlsym(RTLD_NEXT, "calloc");
	*(void **)&real_malloc = dlsym(RTLD_NEXT, "malloc");
	*(void **)&real_realloc = dlsym(RTLD_NEXT, "realloc");
	*(void **)&real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
	*(void **)&real_free = dlsym(RTLD_NEXT, "free");
	v = getenv("FAILMALLOC_NTH");
	nth = v ? strtoul(v, NULL, 10) : 0;
	counting_all = getenv("FAILMALLOC_ALL") != NULL;
	dl_iterate_phdr(find_program, NULL);
	{
		/* backtrace() loads libgcc_s on its first call, which allocates */
		void *frames[2];

		in_backtrace = 1;
		(void)backtrace(frames, 2);
		in_backtrace = 0;
	}
	resolving = 0;
}

static int is_own(uintptr_t a)
{
	for (int i = 0; i < n_segs; i++)
		if (a >= seg_lo[i] && a < seg_hi[i])
			return 1;
	return 0;
}

/* true when the program's code called for this allocation, directly or through a library
 * function (strdup, json_object...) */
__attribute__((noinline)) static int for_the_program(void)
{
	void *frames[OWN_DEPTH + 3];
	int n;

	if (counting_all)
		return 1;
	in_backtrace = 1;
	n = backtrace(frames, OWN_DEPTH + 3);
	in_backtrace = 0;
	/* frames[0] is this function, [1] fail_now, [2] our malloc: callers from [3] on
	 * ([2] is checked too: it is never the program's) */
	for (int i = 2; i < n; i++)
		if (is_own((uintptr_t)frames[i]))
			return 1;
	return 0;
}

/* true when this call is the one that fails */
__attribute__((noinline)) static int fail_now(void)
{
	if (in_backtrace || resolving || !for_the_program())
		return 0;
	calls++;
	if (!nth || calls != nth)
		return 0;
	if (getenv("FAILMALLOC_BACKTRACE")) {
		void *frames[24];

		backtrace_symbols_fd(frames, backtrace(frames, 24), STDERR_FILENO);
	}
	errno = ENOMEM;
	return 1;
}

static int in_arena(const void *p)
{
	return (const unsigned char *)p >= arena && (const unsigned char *)p < arena + sizeof(arena);
}

static void *arena_alloc(size_t n)
{
	void *p;

	n = (n + 15) & ~(size_t)15;
	if (n > sizeof(arena) - arena_used)
		return NULL;
	p = arena + arena_used;
	arena_used += n;
	return p;
}

void *malloc(size_t n)
{
	resolve();
	if (!real_malloc)
		return arena_alloc(n);
	return fail_now() ? NULL : real_malloc(n);
}

void *calloc(size_t a, size_t b)
{
	resolve();
	if (!real_calloc)
		return b && a > SIZE_MAX / b ? NULL : arena_alloc(a * b); /* arena is zeroed */
	return fail_now() ? NULL : real_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
	resolve();
	if (in_arena(p)) {
		void *q = malloc(n);

		if (q)
			memcpy(q, p, n < 64 ? n : 64); /* arena blocks are only dlsym's small ones */
		return q;
	}
	return fail_now() ? NULL : real_realloc(p, n);
}

void *reallocarray(void *p, size_t a, size_t b)
{
	if (b && a > SIZE_MAX / b) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, a * b);
}

int posix_memalign(void **ret, size_t align, size_t n)
{
	resolve();
	if (fail_now())
		return ENOMEM;
	return real_posix_memalign(ret, align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
	void *p = NULL;
	int r = posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, n);

	if (r) {
		errno = r;
		return NULL;
	}
	return p;
}

void free(void *p)
{
	if (!p || in_arena(p))
		return;
	resolve();
	real_free(p);
}

__attribute__((destructor)) static void report(void)
{
	char line[64];
	int n;

	if (!getenv("FAILMALLOC_COUNT"))
		return;
	n = snprintf(line, sizeof(line), "failmalloc: calls %lu\n", calls);
	if (n > 0)
		(void)!write(STDERR_FILENO, line, (size_t)n);
}
