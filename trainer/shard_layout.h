// Where gradients and optimizer state live when they are sharded over data-parallel ranks (ZeRO,
// distributed.zero_stage >= 1), and how the gradient reducer groups parameters into buckets.
//
// Buckets: parameters in reverse order (the order backward produces their gradients), a new bucket
// once the current one holds bucket_bytes (or, for the replicated reducer, when the dtype changes).
//
// Sharding: a bucket's gradients are flattened (its members back to back, in bucket order) into a
// buffer padded with zeros to a multiple of the world size W, so that a reduce-scatter hands every
// rank one equal contiguous chunk: rank r owns elements [r*chunk, (r+1)*chunk) of every bucket. A
// rank's shard is its chunks of all buckets, back to back; its reduced gradient and its optimizer
// state (float32 master, exp_avg, exp_avg_sq) are flat tensors of shard_numel elements in that
// order. Segments say which stretch of which parameter each stretch of the shard is; padding belongs
// to no segment. With a single bucket this is the textbook ZeRO layout (one flat buffer cut into W
// contiguous slices); chunks per bucket let each bucket's reduce-scatter start while backward is
// still running, as the stage-0 all-reduce does.
//
// Pure bookkeeping: no tensors, no communication.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ropex {

// Parameter indices per bucket, each bucket in the order its members are flattened. bytes[k] is
// parameter k's gradient size; kind[k] (e.g. its dtype) must be equal within a bucket.
std::vector<std::vector<size_t>> plan_buckets(const std::vector<int64_t>& bytes, const std::vector<int>& kind,
                                              int64_t bucket_bytes);

struct ShardLayout {
  struct Bucket {
    std::vector<size_t> members;   // parameter indices, in flat order
    std::vector<int64_t> offsets;  // each member's first element in the bucket's flat buffer
    int64_t numel = 0;             // the members' elements
    int64_t padded = 0;            // numel rounded up to a multiple of world
    int64_t chunk = 0;             // padded / world: every rank's share
    int64_t shard_offset = 0;      // where this bucket's chunk starts in a rank's shard
  };
  struct Segment {
    size_t param = 0;          // parameter index
    int64_t param_offset = 0;  // first element, in the flattened parameter
    int64_t shard_offset = 0;  // first element, in the shard
    int64_t length = 0;
    size_t bucket = 0;
  };
  int world = 1, rank = 0;
  std::vector<Bucket> buckets;
  std::vector<Segment> segments;  // this rank's, in shard order
  int64_t shard_numel = 0;        // the sum of the buckets' chunks (equal on every rank)

  // numels[k]: parameter k's element count; element_size: bytes per gradient element (the
  // compute dtype's), which sets the bucket boundaries together with bucket_bytes.
  static ShardLayout plan(const std::vector<int64_t>& numels, int64_t element_size, int64_t bucket_bytes, int world,
                          int rank);
};

}  // namespace ropex
