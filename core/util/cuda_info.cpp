#include "util/cuda_info.h"

#ifdef LETHE_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#include <torch/cuda.h>
#endif

namespace lethe {

#ifdef LETHE_WITH_CUDA

bool cuda_build() { return true; }

std::string cuda_runtime_version() {
  int v = 0;
  if (cudaRuntimeGetVersion(&v) != cudaSuccess) return "";
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

std::vector<CudaDevice> cuda_devices() {
  std::vector<CudaDevice> out;
  if (!torch::cuda::is_available()) return out;
  for (int i = 0; i < static_cast<int>(torch::cuda::device_count()); ++i) {
    const cudaDeviceProp* p = at::cuda::getDeviceProperties(i);
    CudaDevice d;
    d.index = i;
    d.name = p->name;
    d.major = p->major;
    d.minor = p->minor;
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(i));
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) {
      d.free_bytes = static_cast<int64_t>(free_b);
      d.total_bytes = static_cast<int64_t>(total_b);
    } else {
      d.total_bytes = static_cast<int64_t>(p->totalGlobalMem);
    }
    out.push_back(d);
  }
  return out;
}

CudaMemory cuda_memory(int device) {
  CudaMemory m;
  if (!torch::cuda::is_available()) return m;
  const auto s = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
  const size_t all = 0;  // StatType::AGGREGATE (its namespace moved between libtorch releases)
  m.allocated = s.allocated_bytes[all].current;
  m.reserved = s.reserved_bytes[all].current;
  m.peak_allocated = s.allocated_bytes[all].peak;
  return m;
}

void reset_cuda_peak(int device) {
  if (torch::cuda::is_available()) c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(device));
}

#else

bool cuda_build() { return false; }
std::string cuda_runtime_version() { return ""; }
std::vector<CudaDevice> cuda_devices() { return {}; }
CudaMemory cuda_memory(int) { return {}; }
void reset_cuda_peak(int) {}

#endif

}  // namespace lethe
