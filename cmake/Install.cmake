# Install rules: headers (sources and generated), moe-opt/moe-exec, the
# runtime libraries, and a CMake package (MoECompiler) for out-of-tree pass
# and dialect plugins:
#
#   cmake --install build --prefix /opt/moe
#   find_package(MoECompiler CONFIG REQUIRED PATHS /opt/moe)
#   moe_add_plugin(MyPlugin MyPass.cpp)
#
# Plugins link nothing: they resolve MLIR and our symbols from the moe-opt
# that loads them (BUILD_NOTES trap 11), so the package exports headers and
# the path of moe-opt, not compiler libraries.
include(CMakePackageConfigHelpers)
set(MOE_INSTALL_INCLUDE_DIR include/moe-compiler)
set(MOE_INSTALL_CMAKE_DIR lib/cmake/MoECompiler)

# Source headers and TableGen files, keeping the folder layout so that
# `#include "dialects/moe/MoeDialect.h"` works against the installed tree.
set(_moe_header_dirs runtime kernels)
if(MOE_ENABLE_COMPILER)
  list(APPEND _moe_header_dirs dialects passes compiler)
  if(EXISTS ${PROJECT_SOURCE_DIR}/frontends)
    list(APPEND _moe_header_dirs frontends)
  endif()
endif()
foreach(dir ${_moe_header_dirs})
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${dir}
    DESTINATION ${MOE_INSTALL_INCLUDE_DIR}
    FILES_MATCHING PATTERN "*.h" PATTERN "*.td" PATTERN "*.fbs")
  # Generated headers (*.h.inc, *.cpp.inc, plan_generated.h).
  install(DIRECTORY ${PROJECT_BINARY_DIR}/${dir}
    DESTINATION ${MOE_INSTALL_INCLUDE_DIR}
    FILES_MATCHING PATTERN "*.inc" PATTERN "*_generated.h"
    PATTERN "CMakeFiles" EXCLUDE)
endforeach()

# The MLIR-free runtime, for programs that load and run plans themselves.
install(TARGETS moe_runtime moe_kernels_cpu moe_plan_file
  ARCHIVE DESTINATION lib LIBRARY DESTINATION lib)

configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/MoECompilerConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cmake/MoECompilerConfig.cmake
  INSTALL_DESTINATION ${MOE_INSTALL_CMAKE_DIR}
  PATH_VARS MOE_INSTALL_INCLUDE_DIR)
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/cmake/MoECompilerConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/cmake/MoECompilerConfig.cmake
  ${PROJECT_BINARY_DIR}/cmake/MoECompilerConfigVersion.cmake
  DESTINATION ${MOE_INSTALL_CMAKE_DIR})
