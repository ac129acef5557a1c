// The only user of torch's c10d: process-group setup from the launcher's environment (torchrun,
// Slurm, or `./run.sh train --nproc N`), and the few collectives training needs. Gloo on CPU,
// NCCL on CUDA. World size 1 needs no store and no backend: every collective is then a no-op,
// unless DistEnv::collectives_with_one_rank asks for the backend anyway (an in-process store, every
// collective run for real: how one GPU proves the NCCL path, ./run.sh gpu-check).
//
// Environment read: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT,
// TORCHELASTIC_USE_AGENT_STORE (torchrun's agent hosts the TCPStore: every rank connects as a client),
// TORCHELASTIC_RESTART_COUNT (prefixes the store so a restarted job never reads stale keys);
// under Slurm without those: SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID (MASTER_ADDR/PORT still needed).
#pragma once
#include "trainer/shard_layout.h"

#include <ATen/ATen.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ropex {

struct DistEnv {
  int rank = 0, world = 1, local_rank = 0, local_world = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  bool agent_store = false;
  int restart_count = 0;
  // The launch this rank belongs to, from the launcher: ROPEX_JOB_ID (./run.sh), TORCHELASTIC_RUN_ID
  // (torchrun), SLURM_JOB_ID.SLURM_STEP_ID (a task srun started: SLURM_PROCID set); "" when none
  // says. Store keys are prefixed
  // with it, so ranks of two launches that reach one port are not counted together.
  std::string job_id;
  // With one rank: make the backend and run every collective through it anyway (distributed.
  // collectives_with_one_rank; not read from the environment).
  bool collectives_with_one_rank = false;
};
DistEnv read_dist_env();  // throws naming the variable when a value is malformed
// Whether this binary has NCCL process groups (nccl.h was found when it was configured).
bool nccl_built();

// A collective started asynchronously. wait() before reading its output: on NCCL it makes the current
// stream wait for the collective (no host synchronisation), on Gloo it blocks until it is done. A
// failure (a dead rank, the timeout) is thrown from wait() with a message saying so.
class PendingCollective {
 public:
  void wait();
  bool started() const { return static_cast<bool>(wait_); }

 private:
  friend class Distributed;
  std::function<void()> wait_;
};

class Distributed {
 public:
  // backend: "gloo" | "nccl". Blocks until all ranks joined or the timeout expires, saying where it
  // waits and, every 10 s, how many ranks have joined; a failure names MASTER_ADDR:MASTER_PORT and
  // the likely cause (nobody listening, the port taken by another job, more ranks than WORLD_SIZE).
  Distributed(const DistEnv& env, const std::string& backend, std::chrono::seconds timeout);
  ~Distributed();
  int rank() const { return env_.rank; }
  int world() const { return env_.world; }
  const DistEnv& env() const { return env_; }
  bool is_main() const { return env_.rank == 0; }
  bool has_backend() const;  // false for one rank without collectives_with_one_rank

  void allreduce_sum(at::Tensor& t);                  // in place
  // Flat collectives on contiguous tensors of one dtype and device, started asynchronously.
  // reduce_scatter_sum: in.numel() == world * out.numel(); rank r receives the sum over ranks of
  // in[r*n, (r+1)*n). allgather: out.numel() == world * in.numel(); rank r's `in` lands at
  // out[r*n, (r+1)*n). With one rank both are a copy.
  PendingCollective allreduce_sum_async(at::Tensor& t);  // in place
  PendingCollective reduce_scatter_sum(at::Tensor& out, at::Tensor& in);
  PendingCollective allgather(at::Tensor& out, at::Tensor& in);
  void broadcast(at::Tensor& t, int root = 0);        // in place
  void barrier();
  // Makes every rank's parameters equal to rank 0's.
  void broadcast_params(const std::vector<at::Tensor>& params);
  // Gathers one string per rank on every rank (e.g. a config hash to check all ranks agree).
  std::vector<std::string> allgather_string(const std::string& s);
  // Rank 0 runs `work` while the other ranks wait on the store, without the collective timeout (a
  // large checkpoint can take longer), up to max_wait. An exception on rank 0 is rethrown on every
  // rank, so none is left waiting.
  void run_on_main(const std::function<void()>& work, std::chrono::seconds max_wait);

 private:
  friend class GradReducer;
  void make_backend(const std::string& backend, std::chrono::seconds timeout);
  struct Impl;
  DistEnv env_;
  std::unique_ptr<Impl> impl_;
};

// Gradient reduction overlapped with the backward pass, as DDP does: parameters are grouped into
// flat buckets of about bucket_bytes in reverse order (the order backward produces gradients, see
// shard_layout.h); a post-accumulation hook on each parameter's gradient accumulator marks it ready,
// and when a bucket's last gradient is accumulated the bucket's collective starts asynchronously while
// backward continues. Only the backward after arm() is reduced (the last micro-batch of an
// accumulation step); finish() waits for every bucket.
//
// zero_stage 0 (replicated optimizer): each bucket's flattened copy is all-reduced and finish()
//   writes the sums back into every parameter's .grad (the flat buffers are allocated once and kept).
// zero_stage 1 (sharded optimizer state): the parameters' .grad are views into the buckets' flat
//   buffers (zero-padded to a multiple of the world size, kept), so gradients accumulate in place with
//   no copy; each bucket is reduce-scattered into this rank's chunk of grad_shard(). The .grad keep
//   this rank's own (unreduced) gradients; only grad_shard() holds sums. At most two reduce-scatters
//   stay in flight (as at stage 2): Gloo holds a copy of each bucket until its work is waited for, so
//   unbounded, the copies add up to a second set of gradients on CPU.
// zero_stage 2 (sharded gradients too): gradients are not kept whole after the reduction. When a
//   bucket is ready its gradients are packed into a flat buffer allocated for the occasion and the
//   parameters' .grad are released; at most two buckets' reduce-scatters stay in flight (launching
//   a third waits for the oldest and frees its buffer). After finish() only grad_shard() (1/W of the
//   gradients) lives until the update, and with one micro-batch per step whole gradients never
//   exist all at once. Micro-batches before the last one still accumulate whole gradients in .grad
//   (they are not reduced; see trainer/zero.h).
class GradReducer {
 public:
  GradReducer(Distributed& dist, const std::vector<at::Tensor>& params, int64_t bucket_bytes);  // stage 0
  // Stages 1 and 2; `layout` (planned for these parameters and this rank) must outlive the reducer.
  GradReducer(Distributed& dist, const std::vector<at::Tensor>& params, const ShardLayout& layout, int zero_stage);
  ~GradReducer();
  void arm();
  void finish();
  int64_t buckets() const;
  int64_t launched_during_backward() const;  // buckets whose collective started before finish()
  // Stages 1 and 2: this rank's reduced gradient, layout.shard_numel elements in the parameters'
  // dtype, valid after finish() until the next arm(); zero where the layout has padding.
  const at::Tensor& grad_shard() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ropex
