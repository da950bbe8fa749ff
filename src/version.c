/* The library's own version, compiled in from the generated nabla/version.h:
 * a program compares it with the NB_VERSION_STRING it was compiled with. */
#include "nabla/core.h"

const char *nb_version(void) { return NB_VERSION_STRING; }
