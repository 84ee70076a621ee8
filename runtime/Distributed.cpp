//===- Distributed.cpp - Ranks of a multi-process run ---------------------===//

#include "runtime/Distributed.h"

#ifdef MOE_HAVE_MPI
// The C API only: OpenMPI's C++ bindings need a library we do not link.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <string>

namespace moe::rt::dist {

namespace {
int rank_ = 0, size_ = 1;
bool started_ = false;
} // namespace

bool built() {
#ifdef MOE_HAVE_MPI
  return true;
#else
  return false;
#endif
}

Status init(int *argc, char ***argv) {
#ifdef MOE_HAVE_MPI
  // Only under a launcher (mpirun sets these): a plain run skips MPI_Init,
  // whose singleton start costs a third of a second, and is rank 0 of 1.
  if (!std::getenv("OMPI_COMM_WORLD_SIZE") && !std::getenv("PMI_SIZE") &&
      !std::getenv("PMIX_RANK"))
    return Status::ok();
  int already = 0;
  MPI_Initialized(&already);
  if (!already) {
    if (MPI_Init(argc, argv) != MPI_SUCCESS)
      return Status::error("MPI_Init failed");
    started_ = true;
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
#else
  (void)argc;
  (void)argv;
#endif
  return Status::ok();
}

void finalize() {
#ifdef MOE_HAVE_MPI
  if (started_) {
    MPI_Finalize();
    started_ = false;
  }
#endif
}

int rank() { return rank_; }
int size() { return size_; }

Status allreduceSum(float *data, int64_t n) {
  if (size_ == 1 || n == 0)
    return Status::ok();
#ifdef MOE_HAVE_MPI
  for (int64_t done = 0; done < n;) {
    int count = int(std::min<int64_t>(n - done, INT_MAX));
    if (MPI_Allreduce(MPI_IN_PLACE, data + done, count, MPI_FLOAT, MPI_SUM,
                      MPI_COMM_WORLD) != MPI_SUCCESS)
      return Status::error("MPI_Allreduce of " + std::to_string(count) +
                           " floats failed");
    done += count;
  }
  return Status::ok();
#else
  return Status::error("this build has no MPI");
#endif
}

} // namespace moe::rt::dist
