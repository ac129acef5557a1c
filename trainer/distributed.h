// The only user of torch's c10d: process-group setup from the launcher's environment (torchrun,
// Slurm, or `./run.sh train --nproc N`), and the few collectives training needs. Gloo on CPU,
// NCCL on CUDA. World size 1 needs no store and no backend: every collective is then a no-op.
//
// Environment read: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT,
// TORCHELASTIC_USE_AGENT_STORE (torchrun's agent hosts the TCPStore: every rank connects as a client),
// TORCHELASTIC_RESTART_COUNT (prefixes the store so a restarted job never reads stale keys);
// under Slurm without those: SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID (MASTER_ADDR/PORT still needed).
#pragma once
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
};
DistEnv read_dist_env();  // throws naming the variable when a value is malformed

class Distributed {
 public:
  // backend: "gloo" | "nccl". Blocks until all ranks joined or the timeout expires.
  Distributed(const DistEnv& env, const std::string& backend, std::chrono::seconds timeout);
  ~Distributed();
  int rank() const { return env_.rank; }
  int world() const { return env_.world; }
  const DistEnv& env() const { return env_; }
  bool is_main() const { return env_.rank == 0; }

  void allreduce_sum(at::Tensor& t);                  // in place
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
  struct Impl;
  DistEnv env_;
  std::unique_ptr<Impl> impl_;
};

// Gradient all-reduce overlapped with the backward pass, as DDP does: parameters are grouped into
// flat buckets of about bucket_bytes in reverse order (the order backward produces gradients); a
// post-accumulation hook on each parameter's gradient accumulator marks it ready, and when a
// bucket's last gradient is accumulated its flattened copy is all-reduced asynchronously while
// backward continues. finish() waits and writes the summed gradients back. Only the backward
// after arm() is reduced (the last micro-batch of an accumulation step).
class GradReducer {
 public:
  GradReducer(Distributed& dist, const std::vector<at::Tensor>& params, int64_t bucket_bytes);
  ~GradReducer();
  void arm();
  void finish();
  int64_t buckets() const;
  int64_t launched_during_backward() const;  // buckets whose all-reduce started before finish()

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ropex
