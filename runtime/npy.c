/* The .npy format (numpy's one-array files), versions 1.0, 2.0 and 3.0: a magic string, a version,
 * a header length, a header that is a Python dict literal ({'descr': '<f4', 'fortran_order': False,
 * 'shape': (2, 3), }) and the raw little-endian, C-ordered data. The header is read by a small
 * parser of exactly that literal; every message starts with the file's name. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "rt_internal.h"

static const char NPY_MAGIC[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* The header: numpy pads the preamble plus header to a multiple of 64 so the data is aligned in
 * memory. */
enum { NPY_ALIGN = 64, NPY_MAX_STR = 64 };

/* ---- descr ----------------------------------------------------------------------------------- */

typedef struct npy_type {
  const char *code; /* after the byte-order character */
  tgc_dtype dtype;
} npy_type;

static const npy_type npy_types[] = {
    {"f8", TGC_DT_F64},  {"f4", TGC_DT_F32}, {"f2", TGC_DT_F16}, {"i8", TGC_DT_I64},
    {"i4", TGC_DT_I32},  {"i2", TGC_DT_I16}, {"i1", TGC_DT_I8},  {"u1", TGC_DT_U8},
    {"b1", TGC_DT_BOOL}, {"?", TGC_DT_BOOL},
};

/* The descr numpy writes for DT, or NULL when numpy has no such dtype. */
static const char *npy_descr(tgc_dtype dt) {
  switch (dt) {
  case TGC_DT_F64:
    return "<f8";
  case TGC_DT_F32:
    return "<f4";
  case TGC_DT_F16:
    return "<f2";
  case TGC_DT_I64:
    return "<i8";
  case TGC_DT_I32:
    return "<i4";
  case TGC_DT_I16:
    return "<i2";
  case TGC_DT_I8:
    return "|i1";
  case TGC_DT_U8:
    return "|u1";
  case TGC_DT_BOOL:
    return "|b1";
  case TGC_DT_BF16:
  case TGC_DT_F8E4M3:
  case TGC_DT_F8E5M2:
  case TGC_DT_I4:
  case TGC_DT_COUNT:
    break;
  }
  return NULL;
}

/* Maps a descr to a dtype. The byte order may be '<', '=' (native, which is little-endian on every
 * host libtgc_rt builds for) or absent; one-byte types take any order mark since it means nothing
 * for them. */
static int parse_descr(const char *name, const char *s, tgc_dtype *out, tgc_rt_err *err) {
  char order = '=';
  const char *code = s;
  if (*s == '<' || *s == '>' || *s == '|' || *s == '=') {
    order = *s;
    code = s + 1;
  }
  if (code[0] == 'O' &&
      (code[1] == '\0' || strcmp(code + 1, "8") == 0 || strcmp(code + 1, "4") == 0))
    return tgc_rt_errorf(err, "%s: object arrays are not supported (descr '%s')", name, s);
  for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++) {
    if (strcmp(code, npy_types[i].code) != 0)
      continue;
    tgc_dtype dt = npy_types[i].dtype;
    if (tgc_rt_dtype_size(dt) > 1 && order == '>')
      return tgc_rt_errorf(err,
                           "%s: big-endian arrays are not supported (descr '%s'); save with "
                           "arr.astype(arr.dtype.newbyteorder('<'))",
                           name, s);
    if (tgc_rt_dtype_size(dt) > 1 && order == '|')
      return tgc_rt_errorf(err, "%s: descr '%s' does not give the byte order of a multi-byte type",
                           name, s);
    *out = dt;
    return 0;
  }
  return tgc_rt_errorf(
      err, "%s: unsupported dtype descr '%s' (supported: <f8 <f4 <f2 <i8 <i4 <i2 |i1 |u1 |b1)",
      name, s);
}

/* ---- the header dict ------------------------------------------------------------------------- */

typedef struct hdr {
  const char *name;
  const char *start, *p, *end;
  tgc_rt_err *err;
  char descr[NPY_MAX_STR + 1];
  bool fortran;
  uint32_t rank;
  int64_t shape[TGC_RT_MAX_RANK];
  bool have_descr, have_fortran, have_shape;
} hdr;

/* Up to 40 bytes of the header from P, with unprintable bytes shown as '?'. */
static void snippet(const hdr *h, const char *p, char *buf, size_t cap) {
  size_t n = 0;
  for (; p < h->end && n + 1 < cap && n < 40; p++, n++)
    buf[n] = (*p >= 0x20 && *p < 0x7F) ? *p : '?';
  buf[n] = '\0';
}

static int hdr_error(hdr *h, const char *what) {
  char snip[48];
  snippet(h, h->p, snip, sizeof snip);
  return tgc_rt_errorf(h->err, "%s: malformed .npy header: %s at header byte %zu (near \"%s\")",
                       h->name, what, (size_t)(h->p - h->start), snip);
}

static void skip_ws(hdr *h) {
  while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r'))
    h->p++;
}

static bool accept(hdr *h, char c) {
  skip_ws(h);
  if (h->p < h->end && *h->p == c) {
    h->p++;
    return true;
  }
  return false;
}

/* string := '\'' chars '\'' | '"' chars '"'   (no escapes: no key or supported descr needs one) */
static int parse_string(hdr *h, char *out) {
  skip_ws(h);
  if (h->p >= h->end || (*h->p != '\'' && *h->p != '"'))
    return hdr_error(h, "expected a string");
  char q = *h->p++;
  size_t n = 0;
  while (h->p < h->end && *h->p != q) {
    if (*h->p == '\\')
      return hdr_error(h, "escape sequences are not supported");
    if (n == NPY_MAX_STR)
      return hdr_error(h, "string too long");
    out[n++] = *h->p++;
  }
  if (h->p >= h->end)
    return hdr_error(h, "unterminated string");
  h->p++;
  out[n] = '\0';
  return 0;
}

/* dim := '-'? digit+ 'L'?   (Python 2's numpy wrote longs with an L) */
static int parse_dim(hdr *h, int64_t *out) {
  skip_ws(h);
  bool neg = h->p < h->end && *h->p == '-';
  if (neg)
    h->p++;
  if (h->p >= h->end || *h->p < '0' || *h->p > '9')
    return hdr_error(h, "expected an integer dim");
  uint64_t v = 0;
  const char *digits = h->p;
  while (h->p < h->end && *h->p >= '0' && *h->p <= '9') {
    unsigned d = (unsigned)(*h->p - '0');
    if (v > ((uint64_t)INT64_MAX - d) / 10) {
      h->p = digits;
      return hdr_error(h, "dim overflows a 64-bit integer");
    }
    v = v * 10 + d;
    h->p++;
  }
  if (h->p < h->end && *h->p == 'L')
    h->p++;
  if (neg && v != 0)
    return tgc_rt_errorf(h->err, "%s: negative dim -%" PRIu64 " in the .npy shape", h->name, v);
  *out = (int64_t)v;
  return 0;
}

/* shape := '(' ')' | '(' dim ',' ')' | '(' dim (',' dim)+ ','? ')' */
static int parse_shape(hdr *h) {
  if (!accept(h, '('))
    return hdr_error(h, "expected '(' to open the shape tuple");
  h->rank = 0;
  bool comma = false;
  while (!accept(h, ')')) {
    if (h->rank && !comma)
      return hdr_error(h, "expected ',' or ')' in the shape");
    if (h->rank == TGC_RT_MAX_RANK)
      return tgc_rt_errorf(h->err, "%s: the .npy shape has more than %d dims", h->name,
                           TGC_RT_MAX_RANK);
    if (parse_dim(h, &h->shape[h->rank]))
      return -1;
    h->rank++;
    comma = accept(h, ',');
  }
  if (h->rank == 1 && !comma)
    return tgc_rt_errorf(h->err,
                         "%s: malformed .npy header: the shape (%" PRId64
                         ") is not a tuple; a 1-D shape "
                         "is written (%" PRId64 ",)",
                         h->name, h->shape[0], h->shape[0]);
  return 0;
}

static int parse_bool(hdr *h, bool *out) {
  skip_ws(h);
  size_t left = (size_t)(h->end - h->p);
  if (left >= 4 && memcmp(h->p, "True", 4) == 0) {
    h->p += 4;
    *out = true;
    return 0;
  }
  if (left >= 5 && memcmp(h->p, "False", 5) == 0) {
    h->p += 5;
    *out = false;
    return 0;
  }
  return hdr_error(h, "expected True or False");
}

/* header := '{' (key ':' value (',' key ':' value)* ','?)? '}' ws*   with each of the three keys
 * once */
static int parse_header(hdr *h) {
  skip_ws(h);
  if (h->p >= h->end || *h->p != '{') {
    char snip[48];
    snippet(h, h->p, snip, sizeof snip);
    return tgc_rt_errorf(h->err, "%s: the .npy header is not a dict (it starts \"%s\")", h->name,
                         snip);
  }
  h->p++;
  bool first = true;
  for (;;) {
    if (accept(h, '}'))
      break;
    if (!first && !accept(h, ','))
      return hdr_error(h, "expected ',' or '}'");
    first = false;
    if (accept(h, '}'))
      break; /* a trailing comma, as numpy writes */
    char key[NPY_MAX_STR + 1];
    const char *key_at = h->p;
    if (parse_string(h, key))
      return -1;
    if (!accept(h, ':'))
      return hdr_error(h, "expected ':' after a key");
    bool *seen;
    int rc;
    if (strcmp(key, "descr") == 0) {
      seen = &h->have_descr;
      skip_ws(h);
      if (h->p < h->end && *h->p == '[')
        return tgc_rt_errorf(h->err, "%s: structured arrays are not supported", h->name);
      rc = parse_string(h, h->descr);
    } else if (strcmp(key, "fortran_order") == 0) {
      seen = &h->have_fortran;
      rc = parse_bool(h, &h->fortran);
    } else if (strcmp(key, "shape") == 0) {
      seen = &h->have_shape;
      rc = parse_shape(h);
    } else {
      h->p = key_at;
      return tgc_rt_errorf(
          h->err,
          "%s: unexpected key '%s' in the .npy header (expected descr, fortran_order "
          "and shape)",
          h->name, key);
    }
    if (rc)
      return -1;
    if (*seen) {
      h->p = key_at;
      return tgc_rt_errorf(h->err, "%s: key '%s' appears twice in the .npy header", h->name, key);
    }
    *seen = true;
  }
  skip_ws(h);
  if (h->p != h->end)
    return hdr_error(h, "unexpected text after the dict");
  const char *missing = !h->have_descr     ? "descr"
                        : !h->have_fortran ? "fortran_order"
                        : !h->have_shape   ? "shape"
                                           : NULL;
  if (missing)
    return tgc_rt_errorf(h->err, "%s: the .npy header has no '%s' key", h->name, missing);
  return 0;
}

/* ---- reading --------------------------------------------------------------------------------- */

static uint32_t le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int tgc_rt_npy_parse(const void *data, size_t len, const char *name, tgc_rt_tensor *out,
                     tgc_rt_err *err) {
  const unsigned char *b = data;
  memset(out, 0, sizeof *out);
  if (len < 6 ? len == 0 || memcmp(b, NPY_MAGIC, len) != 0 : memcmp(b, NPY_MAGIC, 6) != 0)
    return tgc_rt_errorf(err, "%s: not a .npy file (bad magic; expected \"\\x93NUMPY\")", name);
  if (len < 8)
    return tgc_rt_errorf(err, "%s: truncated .npy header (the file is %zu bytes)", name, len);
  unsigned major = b[6], minor = b[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    return tgc_rt_errorf(err, "%s: unsupported .npy format version %u.%u (1.0, 2.0 and 3.0 are)",
                         name, major, minor);
  size_t pre = major == 1 ? 10 : 12;
  if (len < pre)
    return tgc_rt_errorf(err, "%s: truncated .npy header (the file is %zu bytes)", name, len);
  size_t hlen = major == 1 ? (size_t)b[8] | (size_t)b[9] << 8 : (size_t)le32(b + 8);
  if (hlen > len - pre)
    return tgc_rt_errorf(
        err,
        "%s: truncated .npy header: it declares %zu bytes but the file holds %zu after the "
        "preamble",
        name, hlen, len - pre);

  hdr h;
  memset(&h, 0, sizeof h);
  h.name = name;
  h.start = h.p = (const char *)b + pre;
  h.end = h.start + hlen;
  h.err = err;
  if (parse_header(&h))
    return -1;
  tgc_dtype dt = TGC_DT_F32; /* set by parse_descr; the initializer quiets gcc */
  if (parse_descr(name, h.descr, &dt, err))
    return -1;
  if (h.fortran)
    return tgc_rt_errorf(
        err, "%s: Fortran-ordered arrays are not supported; save with np.ascontiguousarray", name);

  char shp[512];
  tgc_rt_shape_str(h.rank, h.shape, shp, sizeof shp);
  size_t n, size = tgc_rt_dtype_size(dt);
  if (!tgc_rt_numel(h.rank, h.shape, &n) || n > SIZE_MAX / size)
    return tgc_rt_errorf(err, "%s: shape %s overflows the address space", name, shp);
  size_t need = n * size, have = len - pre - hlen;
  if (have != need)
    return tgc_rt_errorf(err, "%s: the data is %zu bytes but shape %s of '%s' needs %zu bytes (%s)",
                         name, have, shp, h.descr, need,
                         have < need ? "truncated file" : "trailing bytes");

  tgc_rt_err aerr;
  if (tgc_rt_tensor_alloc(out, dt, h.rank, h.shape, &aerr))
    return tgc_rt_errorf(err, "%s: %s", name, aerr.msg);
  if (need)
    memcpy(out->data, b + pre + hlen, need);
  if (dt == TGC_DT_BOOL) { /* numpy reads any nonzero byte as True; tgc's bools are 0 or 1 */
    unsigned char *d = out->data;
    for (size_t i = 0; i < n; i++)
      d[i] = d[i] != 0;
  }
  return 0;
}

int tgc_rt_npy_read(const char *path, tgc_rt_tensor *out, tgc_rt_err *err) {
  memset(out, 0, sizeof *out);
  tgc_rt_mapped m;
  if (tgc_rt_map_file(path, &m, err))
    return -1;
  int rc = tgc_rt_npy_parse(m.data, m.len, path, out, err);
  tgc_rt_unmap_file(&m);
  return rc;
}

/* ---- writing --------------------------------------------------------------------------------- */

int tgc_rt_npy_write(const char *path, const tgc_rt_tensor *t, tgc_rt_err *err) {
  const char *descr = npy_descr(t->dtype);
  if (!descr)
    return tgc_rt_errorf(err, "%s: numpy has no %s dtype, so a .npy file cannot hold it", path,
                         tgc_dtype_name(t->dtype));
  size_t n;
  if (!tgc_rt_numel(t->rank, t->shape, &n) || n > SIZE_MAX / tgc_rt_dtype_size(t->dtype))
    return tgc_rt_errorf(err, "%s: invalid tensor shape", path);

  tgc_strbuf hb;
  tgc_sb_init(&hb);
  tgc_sb_printf(&hb, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
  for (uint32_t i = 0; i < t->rank; i++)
    tgc_sb_printf(&hb, "%s%" PRId64, i ? ", " : "", t->shape[i]);
  tgc_sb_puts(&hb, t->rank == 1 ? ",), }" : "), }");
  /* Version 1.0 has a 2-byte header length; 2.0 (4 bytes) only when the header outgrows it. */
  size_t pre = 10;
  size_t total = (pre + hb.len + 1 + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
  if (total - pre > 0xFFFF) {
    pre = 12;
    total = (pre + hb.len + 1 + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
  }
  while (pre + hb.len + 1 < total)
    tgc_sb_putc(&hb, ' ');
  tgc_sb_putc(&hb, '\n');

  size_t hlen = hb.len;
  unsigned char preamble[12];
  memcpy(preamble, NPY_MAGIC, 6);
  preamble[6] = pre == 10 ? 1 : 2;
  preamble[7] = 0;
  for (size_t i = 0; i < pre - 8; i++)
    preamble[8 + i] = (unsigned char)(hlen >> (8 * i));
  tgc_rt_chunk chunks[3] = {
      {preamble, pre},
      {hb.data, hb.len},
      {t->data, n * tgc_rt_dtype_size(t->dtype)},
  };
  int rc = tgc_rt_write_file(path, chunks, 3, 0, err);
  tgc_sb_free(&hb);
  return rc;
}
