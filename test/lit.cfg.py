# lit configuration of the MoE compiler's test suites.
import os
import subprocess

import lit.formats

config.name = "MoE"
config.test_format = lit.formats.ShTest(execute_external=True)
config.suffixes = [".mlir", ".test"]
config.excludes = ["CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py", "Inputs", "unit"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.moe_obj_root, "test")

path = os.pathsep.join([config.moe_tools_dir, config.llvm_tools_dir,
                        config.environment.get("PATH", os.environ["PATH"])])
config.environment["PATH"] = path

# Debian's interpreter has numpy/onnx; the pyenv one first on PATH does not.
python = "/usr/bin/python3"
config.substitutions.append(("%python", python))
config.substitutions.append(("%fixtures", config.moe_fixtures))
config.substitutions.append(("%srcroot", config.moe_src_root))
config.substitutions.append(("%moe_libs", os.path.join(config.moe_obj_root, "lib")))
config.substitutions.append(("%moe_obj_root", config.moe_obj_root))

def python_has(module):
    try:
        return subprocess.run([python, "-c", "import " + module],
                              capture_output=True).returncode == 0
    except OSError:
        return False

if python_has("numpy"):
    config.available_features.add("numpy")
if python_has("onnx"):
    config.available_features.add("onnx")
if config.moe_enable_compiler:
    config.available_features.add("compiler")
if os.path.isdir(config.moe_fixtures):
    config.available_features.add("fixtures")

# The CPU's AVX-512 VNNI (moe-exec --int8-activations takes it).
try:
    with open("/proc/cpuinfo") as f:
        cpuinfo = f.read()
        if " avx512_vnni" in cpuinfo:
            config.available_features.add("avx512-vnni")
        # AVX512-BF16 (moe-exec --bf16-activations takes it).
        if " avx512_bf16" in cpuinfo:
            config.available_features.add("avx512-bf16")
except OSError:
    pass

def has_gpu():
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
        return out.returncode == 0 and "GPU" in out.stdout
    except OSError:
        return False

# Multi-rank tests: moe-exec built with MPI and mpirun at hand. OpenMPI
# refuses root without these (CI runs as root); --oversubscribe in the tests
# lets 4 ranks share 2 cores.
import shutil
if config.moe_enable_mpi and shutil.which("mpirun"):
    config.available_features.add("mpi")
    config.environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    config.environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    config.environment["OMPI_MCA_rmaps_base_oversubscribe"] = "1"
# A multi-rank run that hangs (a rank waiting for one that is gone) fails
# the test after 5 minutes instead of holding CI.
config.substitutions.append(("%mpirun", "timeout 300 mpirun"))

# cuda-build: moe-exec has the cuda device; cuda: and a GPU to run it on.
if config.moe_enable_cuda:
    config.available_features.add("cuda-build")
if config.moe_enable_cuda and has_gpu():
    config.available_features.add("cuda")
