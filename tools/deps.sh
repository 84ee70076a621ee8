# deps.sh - the one list of Debian packages the project needs, and the
# function that installs the missing ones. Sourced by demo.sh and check.sh.
#
# Nothing is downloaded any other way: the build uses only these packages
# (CUDA, when present, comes preinstalled under /usr/local/cuda).

MOE_DEBIAN_PACKAGES=(
  cmake ninja-build g++ python3
  libmlir-19-dev mlir-19-tools llvm-19-dev llvm-19-tools   # MLIR/LLVM 19, FileCheck, lit
  libtbb-dev                                               # TBB
  libflatbuffers-dev flatbuffers-compiler                  # plan schema
  libonnx-dev libprotobuf-dev protobuf-compiler            # ONNX
  libgtest-dev                                             # GoogleTest
  libglpk-dev                                              # MIP solver (moe-assign-precision)
  openmpi-bin libopenmpi-dev                               # multi-rank plans (mpirun)
  python3-numpy python3-onnx                               # test references
)

# What the benchmarks need besides: an optimised BLAS for numpy, which
# tools/demo/train_model.py trains with (with Debian's reference BLAS a
# 1024-square GEMM is 28x slower, and a training step 12x).
MOE_BENCH_PACKAGES=(libopenblas0-pthread)

# moe_install_deps [PACKAGE...]: installs the packages of MOE_DEBIAN_PACKAGES,
# and the ones given, that are not installed yet (apt-get update only when
# something is missing).
moe_install_deps() {
  local missing=()
  local pkg
  for pkg in "${MOE_DEBIAN_PACKAGES[@]}" "$@"; do
    [[ "$pkg" == \#* ]] && continue
    if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]; then
      missing+=("$pkg")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: all $((${#MOE_DEBIAN_PACKAGES[@]} + $#)) Debian packages are installed"
    return 0
  fi
  echo "deps: installing ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo="sudo"
    else
      echo "deps: error: need root (or sudo) to install: ${missing[*]}" >&2
      return 1
    fi
  fi
  $sudo apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    { echo "deps: error: apt-get install failed for: ${missing[*]}" >&2; return 1; }
}

# moe_configure BUILD_DIR [cmake args...]: configures the one CMake build.
# nvcc under /usr/local/cuda is used even when it is not on PATH, so that
# every machine with CUDA builds (and CI compiles) the CUDA code.
moe_configure() {
  local build="$1"
  shift
  mkdir -p "$build"
  local cuda=()
  if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
    cuda=(-DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc)
  fi
  cmake -G Ninja -S "$MOE_ROOT" -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DLLVM_EXTERNAL_LIT=/usr/lib/llvm-19/build/utils/lit/lit.py "${cuda[@]}" "$@" >"$build/configure.log" 2>&1 ||
    { cat "$build/configure.log" >&2; echo "configure failed (log: $build/configure.log)" >&2; return 1; }
}
