/* What the session's common part (runtime/session.c) shares with its device backends (the CPU backend in
 * session.c, the CUDA backend in session_cuda.c): the session object and the backend's table of functions.
 * Not part of the runtime's API (session.h). */
#ifndef TGC_RT_SESSION_INTERNAL_H
#define TGC_RT_SESSION_INTERNAL_H

#include "session.h"

typedef struct tgc_rt_backend tgc_rt_backend;

struct tgc_rt_session {
  const tgc_rt_program *p;
  const tgc_rt_backend *be;
  tgc_rt_device device;
  tgc_rt_weights *w;   /* bound weights (a reference), or NULL */
  tgc_rt_tensor *in;   /* plan->ninputs borrowed views (data NULL: not set) */
  bool *in_dev;        /* input I is device memory */
  int64_t *syms;       /* the symbol values of the last run */
  bool ran;            /* a run succeeded: its outputs are there */
  tgc_rt_tensor *out;  /* plan->noutputs host outputs, owned (data NULL: not downloaded yet) */
  void *impl;          /* the backend's state */
};

/* A device backend. The common part checks arguments, inputs and sizes (the symbols bound, the plan's sizes,
 * every param's weight) and calls these with that done. */
struct tgc_rt_backend {
  int (*create)(tgc_rt_session *s, const tgc_rt_session_opts *o, tgc_rt_err *err);
  void (*destroy)(tgc_rt_session *s);
  /* S->w is set and every param without symbols checked; upload what can be */
  int (*bind)(tgc_rt_session *s, tgc_rt_err *err);
  /* a run at S->syms; S->out was reset (every entry freed) */
  int (*run)(tgc_rt_session *s, tgc_rt_err *err);
  /* output I of the last run into S->out[I] (host memory; allocated here) */
  int (*fetch)(tgc_rt_session *s, uint32_t i, tgc_rt_err *err);
  /* output I (BYTES, dense) to device memory DST; NULL where the backend has no device memory */
  int (*copy_to_device)(tgc_rt_session *s, uint32_t i, void *dst, size_t bytes, tgc_rt_err *err);
  void (*stats)(const tgc_rt_session *s, tgc_rt_session_stats *st);
  int (*time_replays)(tgc_rt_session *s, int n, float *ms, tgc_rt_err *err);
  int (*profile)(tgc_rt_session *s, float *ms, int64_t *gemm_mnkb, unsigned *grid, tgc_rt_err *err);
};

/* The CUDA backend (session_cuda.c). */
extern const tgc_rt_backend tgc_rt_cuda_backend;

/* The dense shape of output I of S's program at S->syms (its declared type). */
int tgc_rt_session_output_shape(const tgc_rt_session *s, uint32_t i, int64_t *shape, tgc_rt_err *err);

#endif
