/* Compiling a program's kernel sources into images (program.h, tgc_rt_program_compile): NVRTC through the kernel
 * cache, a CUBIN for the target architecture and a PTX the driver can compile for any other. The images live in
 * the program's arena, so that an artifact stores them and a session loads them without NVRTC. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kcache.h"
#include "program.h"

/* Whether P already has an image of source S of the kind of ARCH ("" for PTX, else a CUBIN of any arch). */
static bool has_image(const tgc_rt_program *p, uint32_t s, bool cubin) {
  for (uint32_t i = 0; i < p->nimages; i++)
    if (p->images[i].source == s && (p->images[i].arch[0] != 0) == cubin)
      return true;
  return false;
}

/* The name of the first kernel of source S, for messages. */
static const char *kernel_of(const tgc_rt_program *p, uint32_t s) {
  for (uint32_t k = 0; k < p->nkernels; k++)
    if (p->kernels[k].source == s)
      return p->kernels[k].name;
  return "tgc_kernel";
}

int tgc_rt_program_compile(tgc_rt_program *p, tgc_rt_nvrtc *nv, const char *arch, tgc_rt_kcache_stats *stats,
                           tgc_rt_err *err) {
  bool sm = strncmp(arch, "sm_", 3) == 0;
  if (!sm && strncmp(arch, "compute_", 8) != 0)
    return tgc_rt_errorf(err, "'%s' is not an architecture (sm_XX or compute_XX)", arch);
  char ptx_arch[32];
  snprintf(ptx_arch, sizeof ptx_arch, "compute_%s", sm ? arch + 3 : arch + 8);
  tgc_rt_kcache_stats local = {0, 0, 0, 0};
  if (!stats)
    stats = &local;
  uint32_t cap = p->nimages + 2 * p->nsources;
  tgc_rt_pimage *ims = tgc_arena_alloc(&p->arena, sizeof *ims * ((size_t)cap + 1));
  if (p->nimages)
    memcpy(ims, p->images, sizeof *ims * p->nimages);
  uint32_t n = p->nimages;
  const char *cubin_arch = tgc_arena_strndup(&p->arena, arch, strlen(arch));
  for (uint32_t s = 0; s < p->nsources; s++)
    for (int pass = 0; pass < 2; pass++) {
      bool cubin = pass == 0;
      if ((cubin && !sm) || has_image(p, s, cubin))
        continue;
      void *image;
      size_t size;
      tgc_rt_err e;
      if (tgc_rt_kcache_compile(nv, p->sources[s].text, "tgc_kernel", cubin ? arch : ptx_arch, stats, &image, &size,
                                &e)) {
        p->images = ims; /* the images made so far stay (the arena owns them) */
        p->nimages = n;
        return tgc_rt_errorf(err, "kernel %s: %s", kernel_of(p, s), e.msg);
      }
      void *copy = tgc_arena_alloc(&p->arena, size + 1);
      memcpy(copy, image, size);
      free(image);
      ims[n++] = (tgc_rt_pimage){s, cubin ? cubin_arch : "", copy, size};
    }
  p->images = ims;
  p->nimages = n;
  return 0;
}
