//===- MpiApi.h - The MPI C API ---------------------------------*- C++ -*-===//
//
// mpi.h with the C API only: OpenMPI's (and MPICH's) C++ bindings need a
// library we do not link. Runtime files include it under MOE_HAVE_MPI; the
// MPI-only tools (moe-alltoall-bench, moe-exchange-check) always.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_RUNTIME_MPIAPI_H
#define MOE_RUNTIME_MPIAPI_H

#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#endif // MOE_RUNTIME_MPIAPI_H
