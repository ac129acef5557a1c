// trainer/cpu_tensor_count.h: the counter sees exactly the bytes of CPU storage made after it was
// installed, from allocation to release, and keeps their highest total.
#include "trainer/cpu_tensor_count.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace ropex::test {
namespace {

TEST(CpuTensorCount, CountsStorageFromAllocationToRelease) {
  const at::Tensor before = at::ones({1000}, at::kFloat);  // may predate the counter in this process
  install_cpu_tensor_count();
  install_cpu_tensor_count();  // a second call changes nothing
  ASSERT_TRUE(cpu_tensor_count_installed());
  const int64_t base = cpu_tensor_bytes_now();
  reset_cpu_tensor_peak();
  EXPECT_EQ(cpu_tensor_bytes_peak(), base);
  {
    at::Tensor a = at::empty({1 << 20}, at::kFloat);  // 4 MiB
    EXPECT_EQ(cpu_tensor_bytes_now(), base + (4 << 20));
    {
      at::Tensor b = at::empty({3, 1000}, at::kDouble);  // 24,000 bytes
      EXPECT_EQ(cpu_tensor_bytes_now(), base + (4 << 20) + 24000);
      at::Tensor view = b.narrow(1, 0, 10);  // a view shares the storage: nothing more
      EXPECT_EQ(cpu_tensor_bytes_now(), base + (4 << 20) + 24000);
    }
    EXPECT_EQ(cpu_tensor_bytes_now(), base + (4 << 20));
    at::Tensor c = a.neg();  // an operator's output goes through the same allocator
    EXPECT_EQ(cpu_tensor_bytes_now(), base + (8 << 20));
  }
  EXPECT_EQ(cpu_tensor_bytes_now(), base);
  EXPECT_EQ(cpu_tensor_bytes_peak(), base + (8 << 20));  // a and c at once was the most (a and b: 4 MiB + 24 kB)
  reset_cpu_tensor_peak();
  EXPECT_EQ(cpu_tensor_bytes_peak(), base);
  EXPECT_EQ(before.sum().item<float>(), 1000.0f);  // storage from before is still freed its own way
}

}  // namespace
}  // namespace ropex::test
