// Bucket planning and the ZeRO shard layout. See shard_layout.h.
#include "trainer/shard_layout.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace ropex {

std::vector<std::vector<size_t>> plan_buckets(const std::vector<int64_t>& bytes, const std::vector<int>& kind,
                                              int64_t bucket_bytes) {
  if (bytes.size() != kind.size()) throw std::invalid_argument("plan_buckets: bytes and kind differ in length");
  std::vector<std::vector<size_t>> out;
  int64_t filled = 0;
  for (size_t k = bytes.size(); k-- > 0;) {  // reverse parameter order
    if (out.empty() || filled >= bucket_bytes || kind[k] != kind[out.back().front()]) {
      out.emplace_back();
      filled = 0;
    }
    out.back().push_back(k);
    filled += bytes[k];
  }
  return out;
}

ShardLayout ShardLayout::plan(const std::vector<int64_t>& numels, int64_t element_size, int64_t bucket_bytes, int world,
                              int rank) {
  if (world < 1 || rank < 0 || rank >= world)
    throw std::invalid_argument("ShardLayout: rank " + std::to_string(rank) + " outside world " + std::to_string(world));
  ShardLayout L;
  L.world = world;
  L.rank = rank;
  std::vector<int64_t> bytes;
  for (int64_t n : numels) bytes.push_back(n * element_size);
  for (auto& members : plan_buckets(bytes, std::vector<int>(numels.size(), 0), bucket_bytes)) {
    Bucket b;
    b.members = std::move(members);
    for (size_t k : b.members) {
      b.offsets.push_back(b.numel);
      b.numel += numels[k];
    }
    b.padded = (b.numel + world - 1) / world * world;
    b.chunk = b.padded / world;
    b.shard_offset = L.shard_numel;
    L.shard_numel += b.chunk;
    // This rank's chunk [lo, hi) of the bucket, cut where members begin and end.
    const int64_t lo = rank * b.chunk, hi = lo + b.chunk;
    for (size_t i = 0; i < b.members.size(); ++i) {
      const int64_t start = std::max(lo, b.offsets[i]), end = std::min(hi, b.offsets[i] + numels[b.members[i]]);
      if (start >= end) continue;
      L.segments.push_back({.param = b.members[i], .param_offset = start - b.offsets[i],
                            .shard_offset = b.shard_offset + (start - lo), .length = end - start,
                            .bucket = L.buckets.size()});
    }
    L.buckets.push_back(std::move(b));
  }
  return L;
}

}  // namespace ropex
