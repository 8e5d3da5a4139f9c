/* tgc's public C API: compile a tensor-IR module (.tir) into a program, save and load programs as artifacts
 * (model.tgc), and run them in sessions on the CPU reference backend or a CUDA GPU.
 *
 *   libtgc     everything below (compiler and runtime)
 *   libtgc_rt  the runtime only: every function but tgc_compile_text and tgc_compile_file
 *
 * Conventions. Handles are opaque; each tgc_X_create/open/load has a tgc_X_free. Functions that can fail
 * return 0 on success and -1 on failure; when ERR is not NULL a failure stores a new error object in *ERR,
 * which the caller frees with tgc_error_free. The library never prints and never exits. Strings returned by
 * queries live as long as the handle they came from.
 *
 * Thread safety. A program and a weights set are read-only once made: any number of threads may use them,
 * and the sessions of one program that bind one weights set share its host memory. A session is used by one
 * thread at a time (make one session per thread). Errors and tensors are plain values owned by the caller. */
#ifndef TGC_TGC_H
#define TGC_TGC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define TGC_API
#elif defined(__GNUC__)
#define TGC_API __attribute__((visibility("default")))
#else
#define TGC_API
#endif

#define TGC_VERSION_MAJOR 0
#define TGC_VERSION_MINOR 2
#define TGC_VERSION_PATCH 0
#define TGC_VERSION "0.2.0"
/* The library's version, "MAJOR.MINOR.PATCH" (that of the headers is TGC_VERSION). */
TGC_API const char *tgc_version(void);

/* ---- errors --------------------------------------------------------------------------------------------- */

typedef struct tgc_error tgc_error;
/* The whole message, as tgc prints it ("model.tir:12:5: error: 'reshape': ..."). */
TGC_API const char *tgc_error_message(const tgc_error *e);
/* The source location the error comes from, "file:line:col" of the IR op, or "" when there is none. */
TGC_API const char *tgc_error_location(const tgc_error *e);
TGC_API void tgc_error_free(tgc_error *e);

/* ---- tensors -------------------------------------------------------------------------------------------- */

/* Element types, with the IR's names (f16, bf16, f8e4m3...). bool is one byte 0/1; i4 is one sign-extended
 * int8 per element. */
typedef enum tgc_dtype_t {
  TGC_F64 = 0,
  TGC_F32 = 1,
  TGC_F16 = 2,
  TGC_BF16 = 3,
  TGC_F8E4M3 = 4,
  TGC_F8E5M2 = 5,
  TGC_I64 = 6,
  TGC_I32 = 7,
  TGC_I16 = 8,
  TGC_I8 = 9,
  TGC_U8 = 10,
  TGC_I4 = 11,
  TGC_BOOL = 12,
} tgc_dtype_t;
/* "f32"..., or NULL for a value that is no dtype; and the bytes an element takes in memory. */
TGC_API const char *tgc_dtype_str(tgc_dtype_t dt);
TGC_API size_t tgc_dtype_size(tgc_dtype_t dt);

#define TGC_TENSOR_MAX_RANK 16

typedef enum tgc_memory { TGC_MEMORY_HOST = 0, TGC_MEMORY_DEVICE = 1 } tgc_memory;

/* A dense, C-ordered tensor the caller describes (data not owned by the tensor). */
typedef struct tgc_tensor {
  tgc_dtype_t dtype;
  uint32_t rank;
  int64_t shape[TGC_TENSOR_MAX_RANK];
  void *data;
  tgc_memory memory; /* DEVICE: GPU memory of the session's device */
} tgc_tensor;

/* T's element count (0 when its dtype, rank or a dim is invalid, or the count overflows). */
TGC_API size_t tgc_tensor_numel(const tgc_tensor *t);
/* Element I of the host tensor T as a double (every float format converted; integers exact up to 2^53). */
TGC_API double tgc_tensor_get(const tgc_tensor *t, size_t i);
/* Fills the host tensor T with seeded test data exactly as `tgc run --random-inputs --seed N` does: floats
 * uniform in [-1, 1), integers uniform in [0, 4), bools 0/1, drawn from the splitmix64 generator whose state is
 * *STATE. Start the state at N and fill the inputs in order to get tgc run's inputs. */
TGC_API int tgc_tensor_fill_random(tgc_tensor *t, uint64_t *state, tgc_error **err);

/* ---- programs ------------------------------------------------------------------------------------------- */

typedef struct tgc_program tgc_program;

typedef struct tgc_compile_options {
  int opt_level;        /* 0..3 (default 2); ignored when passes is set */
  const char *passes;   /* a pass pipeline ("shape-infer,canonicalize,fuse"), or NULL */
  const char *target;   /* the GPU architecture kernels are compiled for ("sm_90", the default), or "none": no
                           CUDA images (a session compiles them with NVRTC when it starts) */
  const char *entry;    /* the function to compile (NULL: "main", else the first) */
  const char *weights;  /* the weights file the program refers to, overriding the module's 'weights' attribute */
} tgc_compile_options;
TGC_API void tgc_compile_options_init(tgc_compile_options *o);

/* Compiles the module in TEXT (LEN bytes; NAME is its file name in messages and the directory its weights path
 * is resolved against). Diagnostics of a bad module come back as the error (all of them, in order, in the
 * message). A module the CUDA backend cannot run still compiles: the program runs on the CPU
 * (tgc_program_cuda_unsupported says why). libtgc only. */
TGC_API int tgc_compile_text(const char *text, size_t len, const char *name, const tgc_compile_options *o,
                             tgc_program **out, tgc_error **err);
TGC_API int tgc_compile_file(const char *path, const tgc_compile_options *o, tgc_program **out, tgc_error **err);

/* Writes P to PATH as an artifact (model.tgc), atomically. */
TGC_API int tgc_program_save(const tgc_program *p, const char *path, tgc_error **err);
/* Loads an artifact; every section is validated. */
TGC_API int tgc_program_load(const char *path, tgc_program **out, tgc_error **err);
TGC_API void tgc_program_free(tgc_program *p);

/* NULL when the CUDA backend can run P, else why not (naming the first op it cannot run). */
TGC_API const char *tgc_program_cuda_unsupported(const tgc_program *p);
/* The weights file P refers to, resolved against the directory of the file it was compiled from or loaded
 * from; NULL when it has none. */
TGC_API const char *tgc_program_weights_path(const tgc_program *p);
/* The optimized IR text (for inspection; NULL when not kept). */
TGC_API const char *tgc_program_ir(const tgc_program *p);

/* Inputs (the entry function's arguments) and outputs (its results), in order. Dims are symbolic: DIM gives
 * dim D as text, a number ("768") or a polynomial over the symbols ("B*S", "2*S + 1"). Output names are the
 * returned values' names, "" when unnamed. */
TGC_API uint32_t tgc_program_num_inputs(const tgc_program *p);
TGC_API uint32_t tgc_program_num_outputs(const tgc_program *p);
TGC_API const char *tgc_program_input_name(const tgc_program *p, uint32_t i);
TGC_API const char *tgc_program_output_name(const tgc_program *p, uint32_t i);
TGC_API tgc_dtype_t tgc_program_input_dtype(const tgc_program *p, uint32_t i);
TGC_API tgc_dtype_t tgc_program_output_dtype(const tgc_program *p, uint32_t i);
TGC_API uint32_t tgc_program_input_rank(const tgc_program *p, uint32_t i);
TGC_API uint32_t tgc_program_output_rank(const tgc_program *p, uint32_t i);
TGC_API const char *tgc_program_input_dim(const tgc_program *p, uint32_t i, uint32_t d);
TGC_API const char *tgc_program_output_dim(const tgc_program *p, uint32_t i, uint32_t d);
/* Index I out of range: names and dims are NULL, dtypes -1, ranks 0. */
/* The shape of input I when the symbols have the sizes SIZES (tgc_program_num_symbols entries, in order), into
 * SHAPE (its rank's entries; SIZES may be NULL when there are none); an error when a dim overflows or is
 * negative. */
TGC_API int tgc_program_input_shape(const tgc_program *p, uint32_t i, const int64_t *sizes, int64_t *shape,
                                    tgc_error **err);
/* The index of the input named NAME, or -1. */
TGC_API int tgc_program_input_index(const tgc_program *p, const char *name);
/* The symbols the dims are made of ("B", "S"), in order. */
TGC_API uint32_t tgc_program_num_symbols(const tgc_program *p);
TGC_API const char *tgc_program_symbol(const tgc_program *p, uint32_t i);

/* ---- weights -------------------------------------------------------------------------------------------- */

typedef struct tgc_weights tgc_weights;
/* A .safetensors file, memory-mapped and checked. */
TGC_API int tgc_weights_open(const char *path, tgc_weights **out, tgc_error **err);
/* An empty set that tgc_weights_add fills with tensors in the caller's host memory. */
TGC_API int tgc_weights_create(tgc_weights **out, tgc_error **err);
/* Adds T (host memory, borrowed: keep it alive and unchanged while the set or a session using it lives). */
TGC_API int tgc_weights_add(tgc_weights *w, const char *name, const tgc_tensor *t, tgc_error **err);
/* Releases the caller's reference; sessions that bound W keep theirs. */
TGC_API void tgc_weights_free(tgc_weights *w);

/* ---- sessions ------------------------------------------------------------------------------------------- */

typedef enum tgc_device { TGC_DEVICE_CPU = 0, TGC_DEVICE_CUDA = 1, TGC_DEVICE_AUTO = 2 } tgc_device;

typedef struct tgc_session_options {
  tgc_device device; /* AUTO (the default): CUDA when there is a GPU and the program can run there, else CPU */
  int gpu;           /* the CUDA device ordinal (default 0) */
  void *cuda_stream; /* a CUstream to run on, or NULL (the session's own) */
} tgc_session_options;
TGC_API void tgc_session_options_init(tgc_session_options *o);

typedef struct tgc_session tgc_session;
/* A session of P (which must outlive it). CUDA: loads every kernel; an error when there is no GPU. */
TGC_API int tgc_session_create(const tgc_program *p, const tgc_session_options *o, tgc_session **out,
                               tgc_error **err);
TGC_API void tgc_session_free(tgc_session *s);
/* The device the session runs on (never AUTO). */
TGC_API tgc_device tgc_session_device(const tgc_session *s);
/* Binds the program's weights (checked here; uploaded once on the GPU). NULL: the file of
 * tgc_program_weights_path. */
TGC_API int tgc_session_bind_weights(tgc_session *s, tgc_weights *w, tgc_error **err);
/* Input I for the next run (borrowed until tgc_session_run returns). Its dtype and rank must be the input's; the
 * sizes of the symbols are taken from the shapes. */
TGC_API int tgc_session_set_input(tgc_session *s, uint32_t i, const tgc_tensor *t, tgc_error **err);
TGC_API int tgc_session_run(tgc_session *s, tgc_error **err);
/* Output I of the last run as a host tensor whose data the session owns (valid until the next run or the
 * session's end). */
TGC_API int tgc_session_get_output(tgc_session *s, uint32_t i, tgc_tensor *out, tgc_error **err);
/* Copies output I of the last run to DST (BYTES: exactly its size) in host or device memory. */
TGC_API int tgc_session_copy_output(tgc_session *s, uint32_t i, void *dst, size_t bytes, tgc_memory memory,
                                    tgc_error **err);

#ifdef __cplusplus
}
#endif

#endif
