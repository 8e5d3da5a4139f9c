/* Pieces of the tgc driver shared by its modes. */
#ifndef TGC_DRIVER_H
#define TGC_DRIVER_H

#include <stddef.h>

/* Reads all of PATH ('-' is standard input); prints an error and returns NULL on failure. */
char *tgc_read_file(const char *path, size_t *len);
/* `tgc run ...` with ARGV holding the arguments after "run". */
int tgc_driver_run(int argc, char **argv);

#endif
