/* The safetensors format: an 8-byte little-endian header length N, N bytes of JSON mapping each
 * tensor name to
 * {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data section that
 * follows), and an optional "__metadata__" object of strings. The reader checks the whole header
 * before handing out anything and maps the data read-only; tensors are views into the mapping.
 * Messages name the file and the tensor. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "arena.h"
#include "rt_internal.h"

/* The reference implementation refuses larger headers; so do we, before handing them to the JSON
 * parser. */
#define ST_MAX_HEADER 100000000u
/* JSON numbers are doubles in cJSON: integers above 2^53 would not be exact. */
#define ST_MAX_INT 9007199254740992.0

typedef struct st_entry {
  const char *name;
  tgc_dtype dtype;
  uint32_t rank;
  int64_t shape[TGC_RT_MAX_RANK];
  size_t begin, end;
  const int8_t *unpacked; /* an i4 tensor: its elements a byte each (the file packs two per byte) */
} st_entry;

struct tgc_rt_safetensors {
  char *name;
  tgc_rt_mapped map; /* the file, when opened by tgc_rt_st_open */
  const unsigned char *data;
  size_t data_len;
  st_entry *entries; /* sorted by name */
  size_t count;
  tgc_arena arena; /* the names */
};

/* ---- dtypes ---------------------------------------------------------------------------------- */

static const char *st_dtype_name(tgc_dtype dt) {
  switch (dt) {
  case TGC_DT_F64:
    return "F64";
  case TGC_DT_F32:
    return "F32";
  case TGC_DT_F16:
    return "F16";
  case TGC_DT_BF16:
    return "BF16";
  case TGC_DT_F8E4M3:
    return "F8_E4M3";
  case TGC_DT_F8E5M2:
    return "F8_E5M2";
  case TGC_DT_I64:
    return "I64";
  case TGC_DT_I32:
    return "I32";
  case TGC_DT_I16:
    return "I16";
  case TGC_DT_I8:
    return "I8";
  case TGC_DT_U8:
    return "U8";
  case TGC_DT_BOOL:
    return "BOOL";
  case TGC_DT_I4:
  case TGC_DT_COUNT:
    break;
  }
  return NULL;
}

static bool st_dtype_lookup(const char *s, tgc_dtype *out) {
  for (int i = 0; i < TGC_DT_COUNT; i++) {
    const char *n = st_dtype_name((tgc_dtype)i);
    if (n && strcmp(n, s) == 0) {
      *out = (tgc_dtype)i;
      return true;
    }
  }
  return false;
}

/* ---- reading --------------------------------------------------------------------------------- */

typedef enum { JINT_OK, JINT_NOT_INT, JINT_NEGATIVE, JINT_TOO_BIG } jint_status;

/* A JSON number that is a non-negative integer small enough to be exact. */
static jint_status json_uint(const cJSON *v, uint64_t *out) {
  if (!cJSON_IsNumber(v))
    return JINT_NOT_INT;
  double d = v->valuedouble;
  if (isnan(d) || d != floor(d))
    return JINT_NOT_INT;
  if (d < 0)
    return JINT_NEGATIVE;
  if (d > ST_MAX_INT)
    return JINT_TOO_BIG;
  *out = (uint64_t)d;
  return JINT_OK;
}

static const char *jint_what(jint_status s) {
  switch (s) {
  case JINT_OK:
    break;
  case JINT_NOT_INT:
    return "is not an integer";
  case JINT_NEGATIVE:
    return "is negative";
  case JINT_TOO_BIG:
    return "is too large";
  }
  return "";
}

static int entry_error(const char *file, const char *tensor, tgc_rt_err *err, const char *fmt, ...)
    TGC_PRINTF(4, 5);
static int entry_error(const char *file, const char *tensor, tgc_rt_err *err, const char *fmt,
                       ...) {
  char what[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return tgc_rt_errorf(err, "%s: tensor '%.200s': %s", file, tensor, what);
}

/* Checks one tensor's header entry against the DATA_LEN bytes of the data section. */
static int parse_entry(const char *file, const cJSON *item, size_t data_len, st_entry *e,
                       tgc_rt_err *err) {
  const char *tn = item->string;
  if (!cJSON_IsObject(item))
    return entry_error(file, tn, err, "entry is not a JSON object");

  const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
  if (!dtype)
    return entry_error(file, tn, err, "missing \"dtype\"");
  if (!cJSON_IsString(dtype))
    return entry_error(file, tn, err, "\"dtype\" is not a string");
  if (!st_dtype_lookup(dtype->valuestring, &e->dtype))
    return entry_error(file, tn, err,
                       "unknown dtype '%.40s' (supported: F64 F32 F16 BF16 F8_E4M3 F8_E5M2 I64 I32 "
                       "I16 I8 U8 BOOL)",
                       dtype->valuestring);

  const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
  if (!shape)
    return entry_error(file, tn, err, "missing \"shape\"");
  if (!cJSON_IsArray(shape))
    return entry_error(file, tn, err, "\"shape\" is not an array");
  int rank = cJSON_GetArraySize(shape);
  if (rank > TGC_RT_MAX_RANK)
    return entry_error(file, tn, err, "rank %d exceeds the maximum of %d", rank, TGC_RT_MAX_RANK);
  e->rank = (uint32_t)rank;
  int k = 0;
  for (const cJSON *d = shape->child; d; d = d->next, k++) {
    uint64_t v = 0;
    jint_status s = json_uint(d, &v);
    if (s != JINT_OK) {
      if (cJSON_IsNumber(d))
        return entry_error(file, tn, err, "shape entry %d (%g) %s", k, d->valuedouble,
                           jint_what(s));
      return entry_error(file, tn, err, "shape entry %d %s", k, jint_what(s));
    }
    e->shape[k] = (int64_t)v;
  }

  const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
  if (!offs)
    return entry_error(file, tn, err, "missing \"data_offsets\"");
  if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
    return entry_error(file, tn, err, "\"data_offsets\" is not an array [begin, end]");
  uint64_t be[2];
  for (int i = 0; i < 2; i++) {
    const cJSON *o = cJSON_GetArrayItem(offs, i);
    jint_status s = json_uint(o, &be[i]);
    if (s != JINT_OK) {
      if (cJSON_IsNumber(o))
        return entry_error(file, tn, err, "data offset %s (%g) %s", i ? "end" : "begin",
                           o->valuedouble, jint_what(s));
      return entry_error(file, tn, err, "data offset %s %s", i ? "end" : "begin", jint_what(s));
    }
  }
  if (be[0] > be[1])
    return entry_error(file, tn, err,
                       "data offsets [%" PRIu64 ", %" PRIu64 "] begin after they end", be[0],
                       be[1]);
  if (be[1] > data_len)
    return entry_error(file, tn, err,
                       "data offsets [%" PRIu64 ", %" PRIu64
                       "] end beyond the data section (%zu bytes)",
                       be[0], be[1], data_len);
  e->begin = (size_t)be[0];
  e->end = (size_t)be[1];

  char shp[512];
  tgc_rt_shape_str(e->rank, e->shape, shp, sizeof shp);
  size_t n, size = tgc_rt_dtype_size(e->dtype);
  if (!tgc_rt_numel(e->rank, e->shape, &n) || n > SIZE_MAX / size)
    return entry_error(file, tn, err, "shape %s overflows the address space", shp);
  if (n * size != e->end - e->begin)
    return entry_error(file, tn, err,
                       "shape %s of %s needs %zu bytes but data offsets [%zu, %zu] hold %zu", shp,
                       dtype->valuestring, n * size, e->begin, e->end, e->end - e->begin);
  return 0;
}

static int cmp_by_range(const void *a, const void *b) {
  const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
  if (x->begin != y->begin)
    return x->begin < y->begin ? -1 : 1;
  return x->end < y->end ? -1 : x->end > y->end;
}

static int cmp_by_name(const void *a, const void *b) {
  return strcmp(((const st_entry *)a)->name, ((const st_entry *)b)->name);
}

/* No two non-empty byte ranges may share a byte (empty tensors occupy nothing, wherever they
 * point). */
static int check_overlaps(const char *file, st_entry *entries, size_t n, tgc_rt_err *err) {
  st_entry **by_range = tgc_xmalloc((n ? n : 1) * sizeof *by_range);
  for (size_t i = 0; i < n; i++)
    by_range[i] = &entries[i];
  qsort(by_range, n, sizeof *by_range, cmp_by_range);
  const st_entry *prev = NULL;
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    const st_entry *e = by_range[i];
    if (e->begin == e->end)
      continue;
    if (prev && e->begin < prev->end) {
      rc = tgc_rt_errorf(
          err, "%s: tensors '%.200s' and '%.200s' overlap (data offsets [%zu, %zu] and [%zu, %zu])",
          file, prev->name, e->name, prev->begin, prev->end, e->begin, e->end);
      break;
    }
    prev = e;
  }
  free(by_range);
  return rc;
}

/* i4 tensors, which safetensors has no dtype for, are stored as U8 tensors of their elements packed two per byte
 * (element 2j in the low nibble of byte j, 2j+1 in the high one, two's complement), shape [ceil(numel / 2)], with
 * the metadata entry "tgc.i4.NAME": "D0,D1,..." giving their shape (docs/quantization.md). */
#define ST_I4_KEY "tgc.i4."

static const st_entry *find_entry(const tgc_rt_safetensors *st, const char *name);

static int unpack_i4(tgc_rt_safetensors *st, const char *name, const char *shape_text, tgc_rt_err *err) {
  st_entry *e = (st_entry *)find_entry(st, name);
  if (!e)
    return tgc_rt_errorf(err, "%s: metadata '%s%.200s' names no tensor", st->name, ST_I4_KEY, name);
  int64_t shape[TGC_RT_MAX_RANK];
  uint32_t rank = 0;
  const char *p = shape_text;
  while (*p) {
    char *end;
    long long v = strtoll(p, &end, 10);
    if (end == p || v < 0 || rank == TGC_RT_MAX_RANK || (*end && *end != ','))
      return entry_error(st->name, name, err, "metadata shape '%.100s' of an i4 tensor is not D0,D1,... (at most %d "
                         "non-negative dims)", shape_text, TGC_RT_MAX_RANK);
    shape[rank++] = v;
    p = *end ? end + 1 : end;
  }
  size_t n;
  if (!tgc_rt_numel(rank, shape, &n))
    return entry_error(st->name, name, err, "i4 shape '%.100s' overflows", shape_text);
  if (e->dtype != TGC_DT_U8 || e->rank != 1 || (uint64_t)e->shape[0] != n / 2 + n % 2)
    return entry_error(st->name, name, err, "an i4 tensor of %zu elements is stored as U8[%zu], not %s of %zu "
                       "bytes", n, n / 2 + n % 2, e->dtype == TGC_DT_U8 ? "U8" : "another dtype",
                       e->end - e->begin);
  int8_t *u = tgc_arena_alloc(&st->arena, n ? n : 1);
  const unsigned char *b = st->data + e->begin;
  for (size_t i = 0; i < n; i++) {
    int v = (b[i / 2] >> (4 * (i % 2))) & 0xF;
    u[i] = (int8_t)(v >= 8 ? v - 16 : v);
  }
  e->unpacked = u;
  e->dtype = TGC_DT_I4;
  e->rank = rank;
  memcpy(e->shape, shape, sizeof(int64_t) * rank);
  return 0;
}

static int parse_header(tgc_rt_safetensors *st, const unsigned char *b, size_t len,
                        tgc_rt_err *err) {
  const char *file = st->name;
  if (len < 8)
    return tgc_rt_errorf(
        err, "%s: truncated file: %zu bytes is too short for the 8-byte header length", file, len);
  uint64_t hlen = 0;
  for (int i = 0; i < 8; i++)
    hlen |= (uint64_t)b[i] << (8 * i);
  if (hlen > len - 8)
    return tgc_rt_errorf(err,
                         "%s: the header length %" PRIu64
                         " exceeds the %zu bytes that follow it: the file "
                         "is truncated or not a safetensors file",
                         file, hlen, len - 8);
  if (hlen > ST_MAX_HEADER)
    return tgc_rt_errorf(err, "%s: the header length %" PRIu64 " exceeds the limit of %u bytes",
                         file, hlen, ST_MAX_HEADER);
  const char *json = (const char *)b + 8, *jend = json + hlen;
  st->data = b + 8 + hlen;
  st->data_len = len - 8 - (size_t)hlen;

  /* cJSON returns NUL-terminated strings, so a name holding a NUL ("w\u0000junk") would come back cut short and
   * match the tensor "w": such names (never legitimate; tgc's verifier rejects them in params) are refused */
  for (const char *p = json; p < jend; p++) {
    bool esc = *p == '\\' && jend - p >= 6 && p[1] == 'u' && memcmp(p + 2, "0000", 4) == 0;
    if (*p == 0 || esc)
      return tgc_rt_errorf(err, "%s: the header holds a NUL character (%s) at byte %zu of the file: tensor names "
                           "and metadata with NUL are not supported", file, esc ? "\\u0000" : "a zero byte",
                           (size_t)(p - json) + 8);
    if (*p == '\\' && p + 1 < jend)
      p++; /* an escaped character, maybe a backslash: "\\u0000" is text, not a NUL */
  }
  const char *stop = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(json, (size_t)hlen, &stop, 0);
  if (!root) {
    size_t at = stop ? (size_t)(stop - json) : 0;
    return tgc_rt_errorf(
        err, "%s: JSON syntax error in the header at byte %zu of the file (byte %zu of the header)",
        file, at + 8, at);
  }
  int rc = 0;
  /* The header is padded with spaces up to the data section; anything else after the JSON is
   * garbage. */
  for (const char *p = stop; p < jend; p++) {
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
      rc = tgc_rt_errorf(err, "%s: unexpected bytes after the JSON header at byte %zu of the file",
                         file, (size_t)(p - json) + 8);
      goto done;
    }
  }
  if (!cJSON_IsObject(root)) {
    rc = tgc_rt_errorf(err, "%s: the header is not a JSON object", file);
    goto done;
  }

  size_t n = 0;
  for (const cJSON *it = root->child; it; it = it->next) {
    if (strcmp(it->string, "__metadata__") != 0) {
      n++;
      continue;
    }
    bool ok = cJSON_IsObject(it);
    for (const cJSON *m = ok ? it->child : NULL; m && ok; m = m->next)
      ok = cJSON_IsString(m);
    if (!ok) {
      rc = tgc_rt_errorf(err, "%s: \"__metadata__\" is not an object of strings", file);
      goto done;
    }
  }
  st->entries = tgc_xcalloc(n ? n : 1, sizeof *st->entries);
  for (const cJSON *it = root->child; it; it = it->next) {
    if (strcmp(it->string, "__metadata__") == 0)
      continue;
    st_entry *e = &st->entries[st->count];
    if ((rc = parse_entry(file, it, st->data_len, e, err)) != 0)
      goto done;
    e->name = tgc_arena_strndup(&st->arena, it->string, strlen(it->string));
    st->count++;
  }
  if ((rc = check_overlaps(file, st->entries, st->count, err)) != 0)
    goto done;
  qsort(st->entries, st->count, sizeof *st->entries, cmp_by_name);
  for (size_t i = 1; i < st->count; i++) {
    if (strcmp(st->entries[i - 1].name, st->entries[i].name) == 0) {
      rc = tgc_rt_errorf(err, "%s: tensor '%.200s' appears twice in the header", file,
                         st->entries[i].name);
      goto done;
    }
  }
  for (const cJSON *it = root->child; it; it = it->next)
    if (strcmp(it->string, "__metadata__") == 0)
      for (const cJSON *m = it->child; m && rc == 0; m = m->next)
        if (strncmp(m->string, ST_I4_KEY, strlen(ST_I4_KEY)) == 0)
          rc = unpack_i4(st, m->string + strlen(ST_I4_KEY), m->valuestring, err);
done:
  cJSON_Delete(root);
  return rc;
}

static tgc_rt_safetensors *st_new(const char *name) {
  tgc_rt_safetensors *st = tgc_xcalloc(1, sizeof *st);
  size_t n = strlen(name);
  st->name = tgc_xmalloc(n + 1);
  memcpy(st->name, name, n + 1);
  tgc_arena_init(&st->arena);
  return st;
}

int tgc_rt_st_open_mem(const void *data, size_t len, const char *name, tgc_rt_safetensors **out,
                       tgc_rt_err *err) {
  *out = NULL;
  tgc_rt_safetensors *st = st_new(name);
  if (parse_header(st, data, len, err)) {
    tgc_rt_st_close(st);
    return -1;
  }
  *out = st;
  return 0;
}

int tgc_rt_st_open(const char *path, tgc_rt_safetensors **out, tgc_rt_err *err) {
  *out = NULL;
  tgc_rt_safetensors *st = st_new(path);
  if (tgc_rt_map_file(path, &st->map, err) || parse_header(st, st->map.data, st->map.len, err)) {
    tgc_rt_st_close(st);
    return -1;
  }
  *out = st;
  return 0;
}

void tgc_rt_st_close(tgc_rt_safetensors *st) {
  if (!st)
    return;
  tgc_rt_unmap_file(&st->map);
  tgc_arena_free(&st->arena);
  free(st->entries);
  free(st->name);
  free(st);
}

size_t tgc_rt_st_count(const tgc_rt_safetensors *st) {
  return st->count;
}

/* The tensors are numbered in name order (strcmp), the order tgc_rt_st_get searches. */
const char *tgc_rt_st_name(const tgc_rt_safetensors *st, size_t i) {
  TGC_ASSERT(i < st->count);
  return st->entries[i].name;
}

static const st_entry *find_entry(const tgc_rt_safetensors *st, const char *name) {
  size_t lo = 0, hi = st->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const st_entry *e = &st->entries[mid];
    int c = strcmp(name, e->name);
    if (c == 0)
      return e;
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

int tgc_rt_st_get(const tgc_rt_safetensors *st, const char *name, tgc_rt_tensor *view,
                  tgc_rt_err *err) {
  (void)err; /* the header was checked whole when the file was opened */
  const st_entry *e = find_entry(st, name);
  if (!e)
    return 1;
  memset(view, 0, sizeof *view);
  view->dtype = e->dtype;
  view->rank = e->rank;
  memcpy(view->shape, e->shape, sizeof view->shape);
  /* Possibly unaligned for the dtype; tgc_rt_get and tgc_rt_set copy with memcpy. */
  view->data = e->unpacked ? (void *)e->unpacked : (void *)(st->data + e->begin);
  view->owned = false;
  return 0;
}

/* ---- writing --------------------------------------------------------------------------------- */

/* cJSON prints integers below 10^15 exactly (15 significant digits); tgc writes nothing larger. */
#define ST_WRITE_MAX_INT 999999999999999u

static bool add_item(cJSON *obj, const char *key, cJSON *item) {
  if (item && cJSON_AddItemToObject(obj, key, item))
    return true;
  cJSON_Delete(item);
  return false;
}

static bool push_item(cJSON *arr, cJSON *item) {
  if (item && cJSON_AddItemToArray(arr, item))
    return true;
  cJSON_Delete(item);
  return false;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int st_write(const char *path, const char *const *names, const tgc_rt_tensor *const *tensors, size_t n,
                    const char *const *meta, size_t nmeta, tgc_rt_err *err);

/* i4 tensors are packed into U8 tensors with a metadata entry each (ST_I4_KEY), then written like the others. */
int tgc_rt_st_write(const char *path, const char *const *names, const tgc_rt_tensor *const *tensors,
                    size_t n, const char *const *meta, size_t nmeta, tgc_rt_err *err) {
  size_t ni4 = 0;
  for (size_t i = 0; i < n; i++)
    ni4 += tensors[i]->dtype == TGC_DT_I4;
  if (!ni4)
    return st_write(path, names, tensors, n, meta, nmeta, err);
  tgc_arena a;
  tgc_arena_init(&a);
  const tgc_rt_tensor **ts = tgc_arena_alloc(&a, sizeof *ts * n);
  const char **m = tgc_arena_alloc(&a, sizeof *m * 2 * (nmeta + ni4));
  if (nmeta)
    memcpy(m, meta, sizeof *m * 2 * nmeta);
  size_t nm = nmeta;
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    const tgc_rt_tensor *t = tensors[i];
    ts[i] = t;
    if (t->dtype != TGC_DT_I4)
      continue;
    size_t numel;
    if (!tgc_rt_numel(t->rank, t->shape, &numel)) {
      rc = tgc_rt_errorf(err, "%s: tensor '%.200s': too large for a safetensors file", path, names[i]);
      break;
    }
    tgc_rt_tensor *p = tgc_arena_alloc(&a, sizeof *p);
    unsigned char *b = tgc_arena_alloc(&a, numel / 2 + numel % 2 + 1);
    for (size_t e = 0; e < numel; e++)
      b[e / 2] |= (unsigned char)((tgc_rt_get_i64(t, e) & 0xF) << (4 * (e % 2)));
    *p = (tgc_rt_tensor){.dtype = TGC_DT_U8, .rank = 1, .data = b};
    p->shape[0] = (int64_t)(numel / 2 + numel % 2);
    ts[i] = p;
    tgc_strbuf key, dims;
    tgc_sb_init(&key);
    tgc_sb_init(&dims);
    tgc_sb_printf(&key, "%s%s", ST_I4_KEY, names[i]);
    for (uint32_t d = 0; d < t->rank; d++)
      tgc_sb_printf(&dims, "%s%lld", d ? "," : "", (long long)t->shape[d]);
    m[2 * nm] = tgc_arena_strndup(&a, key.data, key.len);
    m[2 * nm + 1] = tgc_arena_strndup(&a, dims.data ? dims.data : "", dims.len);
    nm++;
    tgc_sb_free(&key);
    tgc_sb_free(&dims);
  }
  if (rc == 0)
    rc = st_write(path, names, ts, n, m, nm, err);
  tgc_arena_free(&a);
  return rc;
}

static int st_write(const char *path, const char *const *names, const tgc_rt_tensor *const *tensors, size_t n,
                    const char *const *meta, size_t nmeta, tgc_rt_err *err) {
  size_t *sizes = tgc_xmalloc((n ? n : 1) * sizeof *sizes);
  int rc = -1;
  cJSON *root = NULL;
  char *json = NULL;
  unsigned char *header = NULL;
  tgc_rt_chunk *chunks = NULL;

  /* Check everything before building anything: names, dtypes, sizes, offsets. */
  size_t offset = 0;
  for (size_t i = 0; i < n; i++) {
    const tgc_rt_tensor *t = tensors[i];
    if (strcmp(names[i], "__metadata__") == 0) {
      tgc_rt_errorf(err, "%s: '__metadata__' cannot name a tensor", path);
      goto out;
    }
    if (!st_dtype_name(t->dtype)) {
      tgc_rt_errorf(err, "%s: tensor '%.200s': safetensors has no %s dtype", path, names[i],
                    tgc_dtype_name(t->dtype));
      goto out;
    }
    size_t numel;
    bool ok =
        tgc_rt_numel(t->rank, t->shape, &numel) && numel <= SIZE_MAX / tgc_rt_dtype_size(t->dtype);
    for (uint32_t k = 0; ok && k < t->rank; k++)
      ok = (uint64_t)t->shape[k] <= ST_WRITE_MAX_INT;
    sizes[i] = ok ? numel * tgc_rt_dtype_size(t->dtype) : 0;
    if (!ok || sizes[i] > ST_WRITE_MAX_INT - offset) {
      tgc_rt_errorf(err, "%s: tensor '%.200s': too large for a safetensors file", path, names[i]);
      goto out;
    }
    offset += sizes[i];
  }
  if (n > 1) {
    const char **sorted = tgc_xmalloc(n * sizeof *sorted);
    memcpy(sorted, names, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_str);
    const char *dup = NULL;
    for (size_t i = 1; i < n && !dup; i++)
      if (strcmp(sorted[i - 1], sorted[i]) == 0)
        dup = sorted[i];
    if (dup)
      tgc_rt_errorf(err, "%s: tensor '%.200s' is given twice", path, dup);
    free(sorted);
    if (dup)
      goto out;
  }

  /* The header; safetensors wants the data offsets contiguous, in the order the tensors are listed.
   */
  bool ok = (root = cJSON_CreateObject()) != NULL;
  if (ok && nmeta) {
    cJSON *m = cJSON_CreateObject();
    ok = add_item(root, "__metadata__", m);
    for (size_t i = 0; ok && i < nmeta; i++)
      ok = add_item(m, meta[2 * i], cJSON_CreateString(meta[2 * i + 1]));
  }
  offset = 0;
  for (size_t i = 0; ok && i < n; i++) {
    const tgc_rt_tensor *t = tensors[i];
    /* add_item either attaches the new item or deletes it, so nothing leaks when cJSON runs out of
     * memory. */
    cJSON *e = cJSON_CreateObject();
    ok = add_item(root, names[i], e);
    ok = ok && add_item(e, "dtype", cJSON_CreateString(st_dtype_name(t->dtype)));
    cJSON *shape = ok ? cJSON_CreateArray() : NULL;
    ok = ok && add_item(e, "shape", shape);
    for (uint32_t k = 0; ok && k < t->rank; k++)
      ok = push_item(shape, cJSON_CreateNumber((double)t->shape[k]));
    cJSON *offs = ok ? cJSON_CreateArray() : NULL;
    ok = ok && add_item(e, "data_offsets", offs);
    ok = ok && push_item(offs, cJSON_CreateNumber((double)offset));
    ok = ok && push_item(offs, cJSON_CreateNumber((double)(offset + sizes[i])));
    offset += sizes[i];
  }
  if (ok)
    ok = (json = cJSON_PrintUnformatted(root)) != NULL;
  if (!ok) {
    tgc_rt_errorf(err, "%s: out of memory building the safetensors header", path);
    goto out;
  }

  /* Spaces pad the header to a multiple of 8 bytes, so that the data section starts 8-byte aligned.
   */
  size_t jlen = strlen(json), hlen = (jlen + 7) / 8 * 8;
  header = tgc_xmalloc(8 + hlen);
  for (int i = 0; i < 8; i++)
    header[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
  memcpy(header + 8, json, jlen);
  memset(header + 8 + jlen, ' ', hlen - jlen);
  chunks = tgc_xmalloc((n + 1) * sizeof *chunks);
  chunks[0] = (tgc_rt_chunk){header, 8 + hlen};
  for (size_t i = 0; i < n; i++)
    chunks[i + 1] = (tgc_rt_chunk){tensors[i]->data, sizes[i]};
  rc = tgc_rt_write_file(path, chunks, n + 1, 0, err);

out:
  free(chunks);
  free(header);
  if (json)
    cJSON_free(json);
  cJSON_Delete(root);
  free(sizes);
  return rc;
}
