/* Limits shared by the compiler and the runtime (plain data: no IR here). */
#ifndef TGC_LIMITS_H
#define TGC_LIMITS_H

/* The highest tensor rank tgc supports. The verifier rejects any type of higher rank where it enters the IR
 * (arguments, declared and inferred results, constants), and the runtime rejects plans, inputs and weights
 * of higher rank, so the fixed-size shape arrays of the passes, the CPU backend and the CUDA emitter are
 * large enough by contract. */
enum { TGC_MAX_RANK = 16 };

/* The largest contraction dim of an i8 x i8 -> i32 matmul (docs/ir.md 8.6): every product is at most
 * 128 * 128 = 2^14 in magnitude (-128 * -128), so a sum of K of them fits int32 exactly while
 * K * 2^14 <= 2^31 - 1, that is K <= 131071. shape-infer rejects a larger constant K, the CPU backend any. */
enum { TGC_MATMUL_I8_MAX_K = 131071 };

#endif
