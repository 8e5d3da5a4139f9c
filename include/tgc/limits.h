/* Limits shared by the compiler and the runtime (plain data: no IR here). */
#ifndef TGC_LIMITS_H
#define TGC_LIMITS_H

/* The highest tensor rank tgc supports. The verifier rejects any type of higher rank where it enters the IR
 * (arguments, declared and inferred results, constants), and the runtime rejects plans, inputs and weights
 * of higher rank, so the fixed-size shape arrays of the passes, the CPU backend and the CUDA emitter are
 * large enough by contract. */
enum { TGC_MAX_RANK = 16 };

#endif
