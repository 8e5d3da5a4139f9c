/* Includes the installed public header alone (test/install/install-tree.test compiles it as C11 and as C++). */
#include <tgc/tgc.h>

int tgc_header_alone_version_major(void);
int tgc_header_alone_version_major(void) { return TGC_VERSION_MAJOR + (int)sizeof(tgc_tensor) * 0; }
