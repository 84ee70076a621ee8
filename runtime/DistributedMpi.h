//===- DistributedMpi.h - The MPI side of Distributed.h ---------*- C++ -*-===//
//
// For the runtime's MPI code only: include it under MOE_HAVE_MPI.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_RUNTIME_DISTRIBUTEDMPI_H
#define MOE_RUNTIME_DISTRIBUTEDMPI_H

#include "runtime/Distributed.h"
#include "runtime/MpiApi.h"

namespace moe::rt::dist {

/// The communicator of `group`: stream -1 is its own (MPI_COMM_WORLD for
/// All), 0 and 1 two private duplicates, on which the expert exchanges post
/// their dispatches and combines. Made on first use: every rank of the run
/// must reach that use at the same collective call.
StatusOr<MPI_Comm> communicator(const Group &group, int stream);

} // namespace moe::rt::dist

#endif // MOE_RUNTIME_DISTRIBUTEDMPI_H
