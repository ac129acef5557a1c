#include "trainer/cpu_tensor_count.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <atomic>
#include <mutex>

namespace ropex {
namespace {

std::atomic<int64_t> live{0};
std::atomic<int64_t> peak{0};

void raise_peak(int64_t now) {
  int64_t seen = peak.load(std::memory_order_relaxed);
  while (now > seen && !peak.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
  }
}

// What the counter's DataPtr owns: the inner allocator's DataPtr (which frees the memory its own
// way) and the size to take off the count.
struct Counted {
  c10::DataPtr inner;
  int64_t bytes;
};

void release(void* context) {
  auto* c = static_cast<Counted*>(context);
  live.fetch_sub(c->bytes, std::memory_order_relaxed);
  delete c;  // frees the storage through the inner DataPtr's deleter
}

class CountingAllocator final : public c10::Allocator {
 public:
  explicit CountingAllocator(c10::Allocator* inner) : inner_(inner) {}
  c10::DataPtr allocate(size_t n) override {
    c10::DataPtr data = inner_->allocate(n);
    void* ptr = data.get();
    const c10::Device device = data.device();
    auto* c = new Counted{std::move(data), static_cast<int64_t>(n)};
    raise_peak(live.fetch_add(c->bytes, std::memory_order_relaxed) + c->bytes);
    return {ptr, c, &release, device};
  }
  void copy_data(void* dest, const void* src, std::size_t count) const override { default_copy_data(dest, src, count); }

 private:
  c10::Allocator* inner_;
};

std::once_flag installed_once;
std::atomic<bool> installed{false};

}  // namespace

void install_cpu_tensor_count() {
  std::call_once(installed_once, [] {
    // Never destroyed: storage counted by it may outlive any scope, up to the process's exit.
    static auto* counter = new CountingAllocator(c10::GetCPUAllocator());
    // A priority above the default allocator's (0), so GetCPUAllocator() hands out the counter.
    c10::SetCPUAllocator(counter, /*priority=*/1);
    installed = true;
  });
}

bool cpu_tensor_count_installed() { return installed; }
int64_t cpu_tensor_bytes_now() { return live.load(std::memory_order_relaxed); }
int64_t cpu_tensor_bytes_peak() { return peak.load(std::memory_order_relaxed); }
void reset_cpu_tensor_peak() { peak.store(live.load(std::memory_order_relaxed), std::memory_order_relaxed); }

}  // namespace ropex
