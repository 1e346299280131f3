/* The one place that knows which OpenBLAS the build links: PyPI's scipy-openblas32 prefixes
 * every symbol with "scipy_"; a system OpenBLAS does not. */
#ifndef CTRGCN_BLAS_H
#define CTRGCN_BLAS_H
#include <cblas.h>

#if defined(CTRGCN_BLAS_SCIPY)
#define CTRGCN_SGEMM scipy_cblas_sgemm
#define CTRGCN_BLAS_SET_THREADS scipy_openblas_set_num_threads
#else
#define CTRGCN_SGEMM cblas_sgemm
#define CTRGCN_BLAS_SET_THREADS openblas_set_num_threads
#endif

#endif
