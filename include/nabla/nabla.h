/* nabla — automatic differentiation on computational graphs. */
#ifndef NABLA_H
#define NABLA_H
#include "core.h"
#include "graph.h"
#include "plan.h"
#include "op.h"
#include "gradcheck.h"
#include "io.h"
#include "data.h"
#include "model.h"
#include "render.h"
#include "train.h"
#endif
