/* Sessions: a program (runtime/program.h) made ready to run on one device, many times. A session owns its
 * device memory, its stream, its bound weights and, on the GPU, one captured CUDA graph per set of symbol sizes;
 * the CPU backend runs behind the same interface. Errors are returned as values (tgc_rt_err, the message naming
 * the op's "file:line:col" when a step failed); the runtime never prints and never exits.
 *
 * Thread safety: a session is used by one thread at a time. A program and a weights set are read-only once
 * made, and may be shared by the sessions of any number of threads. */
#ifndef TGC_RT_SESSION_H
#define TGC_RT_SESSION_H

#include "program.h"
#include "rt.h"

/* ---- weights ------------------------------------------------------------------------------------ */

/* A set of named host tensors a session binds its params to: a safetensors file (memory-mapped) or tensors in
 * the caller's memory. Reference-counted: every session that binds it holds a reference. */
typedef struct tgc_rt_weights tgc_rt_weights;

int tgc_rt_weights_open(const char *path, tgc_rt_weights **out, tgc_rt_err *err);
/* An empty set named LABEL (for messages) that tgc_rt_weights_add fills. */
tgc_rt_weights *tgc_rt_weights_new(const char *label);
/* Adds the host tensor T as NAME; T's data is borrowed (the caller keeps it alive and unchanged while the set
 * lives). A name given twice is an error. */
int tgc_rt_weights_add(tgc_rt_weights *w, const char *name, const tgc_rt_tensor *t, tgc_rt_err *err);
/* Finds NAME: 0 with a borrowed view in *T, 1 when there is no such tensor. */
int tgc_rt_weights_get(const tgc_rt_weights *w, const char *name, tgc_rt_tensor *t);
const char *tgc_rt_weights_label(const tgc_rt_weights *w); /* the file's path, or the label */
tgc_rt_weights *tgc_rt_weights_retain(tgc_rt_weights *w);
void tgc_rt_weights_release(tgc_rt_weights *w);

/* Where a weights reference REF (a module's 'weights' attribute, a program's weights) points: REF itself when it
 * is absolute or ORIGIN (the file it was read from) is NULL, "-" or in the current directory, else REF in
 * ORIGIN's directory. The caller frees the result. The one rule for tgc run, tgc -o and the C API. */
char *tgc_rt_weights_resolve(const char *origin, const char *ref);
/* The reference an artifact written to ARTIFACT stores for the weights file WEIGHTS: the file's name when both
 * are in one directory, else its absolute path, so that the artifact finds its weights wherever it is loaded
 * from; into *REF (the caller frees it). An error when WEIGHTS cannot be found. */
int tgc_rt_weights_reference(const char *weights, const char *artifact, char **ref, tgc_rt_err *err);

/* ---- sessions ----------------------------------------------------------------------------------- */

typedef enum { TGC_RT_DEVICE_CPU, TGC_RT_DEVICE_CUDA } tgc_rt_device;

typedef struct tgc_rt_session_opts {
  tgc_rt_device device;
  int gpu;      /* CUDA: the device ordinal (0) */
  void *stream; /* CUDA: a CUstream to queue the work on, or NULL for the session's own */
} tgc_rt_session_opts;

typedef struct tgc_rt_session tgc_rt_session;

/* CUDA: the sets of symbol sizes a session keeps an instance for (arena, bound launches, graph); running at a new
 * set beyond them frees the least recently used one. */
enum { TGC_RT_SESSION_MAX_INSTANCES = 8 };

/* A session of P (which must outlive it) on O's device. CUDA: opens the device, loads every kernel (the
 * program's image for this GPU's architecture, else its PTX, else NVRTC through the kernel cache; distinct
 * sources once, on parallel threads). An error when P has no CUDA program (its CUDA_WHY) or there is no GPU. */
int tgc_rt_session_create(const tgc_rt_program *p, const tgc_rt_session_opts *o, tgc_rt_session **out,
                          tgc_rt_err *err);
void tgc_rt_session_destroy(tgc_rt_session *s);
tgc_rt_device tgc_rt_session_device(const tgc_rt_session *s);

/* Binds the program's params to W (a reference is kept): every param is checked against W once, here (its
 * presence, dtype and shape; a param whose shape has symbols is checked at every run, with the sizes it binds),
 * and on the GPU uploaded once. W replaces the set bound before; a set refused by the checks leaves that one
 * bound, a device error while uploading leaves none. */
int tgc_rt_session_bind_weights(tgc_rt_session *s, tgc_rt_weights *w, tgc_rt_err *err);

/* Input I for the next runs: T's data is borrowed until the next tgc_rt_session_run returns; ON_DEVICE says it
 * is GPU memory of the session's device (CUDA sessions only). */
int tgc_rt_session_set_input(tgc_rt_session *s, uint32_t i, const tgc_rt_tensor *t, bool on_device,
                             tgc_rt_err *err);
/* Runs the program on the inputs set. Symbols are bound from the input shapes and every size is checked before
 * anything runs. CUDA: the first run at a set of symbol sizes is queued step by step and checked; later runs at
 * those sizes replay one CUDA graph captured from the same steps. Returns after the work is done. */
int tgc_rt_session_run(tgc_rt_session *s, tgc_rt_err *err);
/* Output I of the last run as a host tensor owned by the session (valid until the next run or the session's
 * end), copied from the device on the first call after a run. */
int tgc_rt_session_output(tgc_rt_session *s, uint32_t i, const tgc_rt_tensor **t, tgc_rt_err *err);
/* Copies output I of the last run (dense, padding dropped) to DST, BYTES long (exactly the output's size), in
 * host memory or, ON_DEVICE, in GPU memory of the session's device. */
int tgc_rt_session_copy_output(tgc_rt_session *s, uint32_t i, void *dst, size_t bytes, bool on_device,
                               tgc_rt_err *err);

/* ---- what the driver shows (tgc run): statistics, timing, profiles ----------------------------- */

typedef struct tgc_rt_session_stats {
  uint32_t nsteps, nkernels, ndistinct, ngemms;
  uint32_t from_program; /* distinct kernels whose image came with the program */
  uint32_t cache_hits, cache_misses; /* the others, from NVRTC through the kernel cache */
  const char *device_name, *arch;
  size_t weight_bytes, arena_bytes, naive_bytes; /* naive: the temporaries without reuse */
  const char *plan_from; /* "the artifact's" or "planned at load" */
  const char *notes;     /* notes for the user (a stored memory plan that did not fit...), one per line, or "" */
  uint32_t instances, evicted; /* CUDA: sets of sizes kept now, and freed to stay within the bound */
} tgc_rt_session_stats;
void tgc_rt_session_stats_get(const tgc_rt_session *s, tgc_rt_session_stats *st);

/* CUDA: N replays of the graph of the last run's sizes (captured now if the last run was the first at them), each
 * timed with events, into MS (N floats); the error flag is checked after them and the outputs are downloaded
 * again afterwards. */
int tgc_rt_session_time_replays(tgc_rt_session *s, int n, float *ms, tgc_rt_err *err);

/* CUDA: one more run with an event around every step: MS[s] for step s of the program (NSTEPS floats), and per
 * GEMM step its sizes in GEMM_MNKB (4 per step: m, n, k, batch; 0 for kernels), per kernel step its grid in GRID
 * (3 per step; 0 for GEMMs). The outputs are downloaded again afterwards. */
int tgc_rt_session_profile(tgc_rt_session *s, float *ms, int64_t *gemm_mnkb, unsigned *grid, tgc_rt_err *err);

#endif
