/* nabla — core types: dtypes, status codes, dimensions, plain tensors.
 *
 * Every function of nabla that can fail returns an nb_status; the message that
 * explains the failure is kept on the object it concerns (graph, plan, ...) and
 * read with that object's *_error() function. nabla never prints, exits or
 * aborts on bad input. */
#ifndef NABLA_CORE_H
#define NABLA_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Marks the functions of the public API, the only symbols libnabla.so exports
 * (the library is built with hidden visibility). */
#if defined(__GNUC__) || defined(__clang__)
#define NB_API __attribute__((visibility("default")))
#else
#define NB_API
#endif

#ifdef __cplusplus
extern "C" {
#endif


#define NB_MAX_DIMS 8   /* highest tensor rank */
#define NB_MAX_SYMS 8   /* distinct free dimensions (N, batch, ...) per graph */

typedef enum { NB_F32, NB_F64, NB_I32 } nb_dtype;

typedef enum {
    NB_OK = 0,
    NB_ERR_ARG,        /* invalid argument or attribute value */
    NB_ERR_SHAPE,      /* shapes do not fit the op */
    NB_ERR_DTYPE,      /* element types do not fit the op */
    NB_ERR_UNKNOWN_OP, /* no op of that name is registered */
    NB_ERR_ARITY,      /* wrong number of inputs */
    NB_ERR_NAME,       /* duplicate or invalid node name */
    NB_ERR_OVERFLOW,   /* a size does not fit in size_t / int64_t */
    NB_ERR_NOMEM,      /* out of memory */
    NB_ERR_UNBOUND,    /* a free dimension has no value at plan time */
    NB_ERR_NO_GRAD,    /* an op on the path has no gradient rule */
    NB_ERR_CYCLE,      /* the graph is not acyclic */
    NB_ERR_RUNTIME,    /* a kernel found bad data (label out of range, ...) */
    NB_ERR_IO,         /* a file could not be read or written */
    NB_ERR_FORMAT      /* a file's content is malformed */
} nb_status;

/* "shape error", "unknown op", ... */
NB_API const char *nb_status_str(nb_status st);

/* Size in bytes of one element. */
NB_API size_t nb_dtype_size(nb_dtype dt);
/* "f32", "f64", "i32". */
NB_API const char *nb_dtype_name(nb_dtype dt);

/* A dimension as the user writes it: a positive size, or a symbol (a free
 * dimension such as "N", bound to a size when a plan is made). */
typedef struct nb_dim {
    int64_t size;     /* used when sym is NULL */
    const char *sym;  /* symbol name, or NULL */
} nb_dim;
#define NB_SYM(s) ((nb_dim){0, (s)})
#define NB_DIM(n) ((nb_dim){(n), NULL})

/* A binding of a free dimension, for plans. */
typedef struct nb_bind {
    const char *sym;
    int64_t value;
} nb_bind;

/* A dense row-major tensor that owns its data (nb_tensor_alloc / _free). */
typedef struct nb_tensor {
    nb_dtype dtype;
    int rank;
    int64_t shape[NB_MAX_DIMS];
    void *data;
} nb_tensor;

/* Allocates zeroed data for the given shape; NB_ERR_OVERFLOW if it cannot fit. */
NB_API nb_status nb_tensor_alloc(nb_tensor *t, nb_dtype dt, int rank, const int64_t *shape);
NB_API void nb_tensor_free(nb_tensor *t);
/* Number of elements (1 for rank 0). */
NB_API size_t nb_tensor_numel(const nb_tensor *t);
NB_API size_t nb_tensor_bytes(const nb_tensor *t);

/* Element count of a shape with overflow check: NB_ERR_OVERFLOW on overflow,
 * NB_ERR_SHAPE on a negative dimension. */
NB_API nb_status nb_shape_numel(int rank, const int64_t *shape, size_t *numel);

/* A list of messages (loader errors, warnings), each its own string. */
typedef struct nb_diags {
    size_t n;
    char **lines;
} nb_diags;
NB_API void nb_diags_free(nb_diags *d);

/* Converts t's data to dtype `to` in place (f32 <-> f64; i32 to a float). */
NB_API nb_status nb_tensor_convert(nb_tensor *t, nb_dtype to);

/* A small seeded generator (xoshiro256**): the same seed gives the same
 * numbers on every machine. */
typedef struct nb_rng {
    uint64_t s[4];
} nb_rng;
NB_API void nb_rng_seed(nb_rng *r, uint64_t seed);
NB_API uint64_t nb_rng_next(nb_rng *r);
NB_API double nb_rng_uniform(nb_rng *r);  /* [0, 1) */
NB_API double nb_rng_normal(nb_rng *r);   /* mean 0, std 1 */

/* nabla's allocator; every allocation of the library goes through it so that
 * tests can prove a planned step allocates nothing. */
NB_API void *nb_malloc(size_t n);
NB_API void *nb_calloc(size_t n, size_t size);
NB_API void *nb_realloc(void *p, size_t n);
NB_API void nb_free(void *p);
/* Number of nb_malloc/nb_calloc/nb_realloc calls made so far by this process. */
NB_API uint64_t nb_alloc_count(void);

#ifdef __cplusplus
}
#endif
#endif
