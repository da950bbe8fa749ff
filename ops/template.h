/* Instantiates a kernel template for f32 and f64. Define NB_TEMPLATE as the
 * template's file name, then include this file; inside the template, T is the
 * element type, F(name) gives name_f32 / name_f64, and GEMM the CBLAS call.
 * No include guard: it is meant to be included once per template. */
#define T float
#define F(name) name##_f32
#define GEMM cblas_sgemm
#include NB_TEMPLATE
#undef T
#undef F
#undef GEMM
#define T double
#define F(name) name##_f64
#define GEMM cblas_dgemm
#include NB_TEMPLATE
#undef T
#undef F
#undef GEMM
#undef NB_TEMPLATE
