#pragma once
// What the CUDA side of this libtorch offers, torch-free to include. Built against a CUDA
// libtorch (LETHE_WITH_CUDA, set by CMake when the Torch package has torch_cuda) it asks the CUDA
// runtime; against a CPU-only libtorch (Debian's 1.13) it reports that the build has no CUDA.
#include <cstdint>
#include <string>
#include <vector>

namespace lethe {

struct CudaDevice {
  int index = 0;
  std::string name;
  int64_t total_bytes = 0, free_bytes = 0;
  int major = 0, minor = 0;  // compute capability
  bool native_bf16() const { return major >= 8; }
};

struct CudaMemory {
  int64_t allocated = 0, reserved = 0, peak_allocated = 0;  // libtorch's caching allocator
};

bool cuda_build();                       // this libtorch was built with CUDA
std::string cuda_runtime_version();      // "13.2", or "" without CUDA
std::vector<CudaDevice> cuda_devices();  // empty without CUDA or without a visible GPU
// The caching allocator's counters for `device`; zeros without CUDA.
CudaMemory cuda_memory(int device);
void reset_cuda_peak(int device);

}  // namespace lethe
