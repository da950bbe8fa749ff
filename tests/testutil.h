/* Helpers shared by the Criterion tests. */
#ifndef NABLA_TESTUTIL_H
#define NABLA_TESTUTIL_H
#include <nabla/nabla.h>
#endif
