// c10d process groups and collectives. See distributed.h. Version-specific c10d calls live here only.
#include "trainer/distributed.h"

#include "trainer/log.h"

#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#ifdef ROPEX_WITH_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace ropex {
namespace {
std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? std::optional<std::string>(v) : std::nullopt;
}

// c10 errors carry a C++ backtrace in what(); a user needs the message only.
const char* without_backtrace(const std::exception& e) {
  const auto* c10 = dynamic_cast<const c10::Error*>(&e);
  return c10 ? c10->what_without_backtrace() : e.what();
}

int env_int(const char* name, int fallback) {
  auto v = env(name);
  if (!v) return fallback;
  try {
    size_t used = 0;
    int x = std::stoi(*v, &used);
    if (used != v->size()) throw std::invalid_argument("trailing characters");
    return x;
  } catch (const std::exception&) {
    throw std::runtime_error(std::string("environment variable ") + name + "='" + *v + "' is not an integer");
  }
}
}  // namespace

DistEnv read_dist_env() {
  DistEnv e;
  const bool torchrun = env("WORLD_SIZE").has_value();
  const bool slurm = !torchrun && env("SLURM_NTASKS").has_value();
  e.world = env_int(torchrun ? "WORLD_SIZE" : "SLURM_NTASKS", 1);
  e.rank = env_int(torchrun ? "RANK" : "SLURM_PROCID", 0);
  e.local_rank = env_int(torchrun ? "LOCAL_RANK" : "SLURM_LOCALID", 0);
  e.local_world = env_int("LOCAL_WORLD_SIZE", slurm ? env_int("SLURM_NTASKS_PER_NODE", e.world) : e.world);
  e.master_addr = env("MASTER_ADDR").value_or("127.0.0.1");
  e.master_port = env_int("MASTER_PORT", 29500);
  e.agent_store = env("TORCHELASTIC_USE_AGENT_STORE").value_or("") == "True";
  e.restart_count = env_int("TORCHELASTIC_RESTART_COUNT", 0);
  if (const auto id = env("ROPEX_JOB_ID")) e.job_id = *id;
  else if (const auto run = env("TORCHELASTIC_RUN_ID")) e.job_id = *run;
  else if (const auto job = env("SLURM_JOB_ID"); job && env("SLURM_PROCID"))  // a task srun started
    e.job_id = *job + "." + env("SLURM_STEP_ID").value_or("0");
  if (e.world < 1) throw std::runtime_error("WORLD_SIZE must be >= 1, got " + std::to_string(e.world));
  if (e.rank < 0 || e.rank >= e.world)
    throw std::runtime_error("RANK=" + std::to_string(e.rank) + " is outside [0, WORLD_SIZE=" + std::to_string(e.world) + ")");
  if (e.world > 1 && !env("MASTER_ADDR") && slurm)
    throw std::runtime_error("under Slurm set MASTER_ADDR (e.g. the first host of $SLURM_JOB_NODELIST) and MASTER_PORT");
  return e;
}

bool nccl_built() {
#ifdef ROPEX_WITH_NCCL
  return true;
#else
  return false;
#endif
}

struct Distributed::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  std::string name;
  int64_t gathers = 0;  // store keys are unique per allgather_string call

  void wait(const c10::intrusive_ptr<c10d::Work>& work, const char* what) {
    try {
      work->wait();
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string(what) + " failed on backend " + name +
                               " (another rank probably died or timed out): " + e.what());
    }
  }
};

Distributed::Distributed(const DistEnv& env_in, const std::string& backend, std::chrono::seconds timeout)
    : env_(env_in), impl_(std::make_unique<Impl>()) {
  impl_->name = backend;
  if (env_.world == 1 && !env_.collectives_with_one_rank) return;
  if (env_.world == 1) {
    // One rank with a real backend: nobody to meet, so an in-process store and no port.
    impl_->store = c10::make_intrusive<c10d::HashStore>();
    make_backend(backend, timeout);
    log::info(cat("one rank with the ", backend, " backend: every collective runs through it (distributed.collectives_with_one_rank)"));
    return;
  }
  const std::string where = cat(env_.master_addr, ":", env_.master_port);
  const bool server = !env_.agent_store && env_.rank == 0;
  const std::string defaults = ropex::env("MASTER_ADDR") && ropex::env("MASTER_PORT")
                                   ? ""
                                   : " (MASTER_ADDR/MASTER_PORT not both set: defaults 127.0.0.1:29500 fill in; a launcher "
                                     "such as torchrun, srun or ./run.sh --nproc sets them)";
  log::info(cat("rank ", env_.rank, "/", env_.world, ": ", server ? "listening for the other ranks on port " : "joining rank 0's store at ",
                server ? std::to_string(env_.master_port) : where, env_.job_id.empty() ? "" : " (launch id '" + env_.job_id + "')",
                defaults, ", for up to ", timeout.count(), " s"));
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(env_.master_port);
  so.isServer = server;
  so.numWorkers = env_.agent_store ? std::nullopt : std::optional<size_t>(env_.world);
  so.waitWorkers = false;  // the ranks are counted below, with progress messages
  so.timeout = timeout;
  c10::intrusive_ptr<c10d::TCPStore> tcp;
  try {
    tcp = c10::make_intrusive<c10d::TCPStore>(env_.master_addr, so);
  } catch (const std::exception& e) {
    throw std::runtime_error(cat("rank ", env_.rank, ": ", server ? cat("cannot listen on port ", env_.master_port)
                                                                    : cat("cannot reach rank 0's store at ", where),
                                 ": ", without_backtrace(e),
                                 server ? " (is another job using that port? set MASTER_PORT to a free one)"
                                        : " (is rank 0 running, with the same MASTER_ADDR and MASTER_PORT?)",
                                 defaults));
  }
  impl_->store = c10::make_intrusive<c10d::PrefixStore>(
      "ropex/" + env_.job_id + "/" + std::to_string(env_.restart_count), tcp);
  // Every rank counts itself in; the one that completes the count says so, and the others wait for
  // that word 10 s at a time, logging how many have joined (one store request per 10 s per rank).
  const auto start = std::chrono::steady_clock::now();
  try {
    const int64_t me = impl_->store->add("joined", 1);
    if (me > env_.world)
      throw std::runtime_error(cat(me, " ranks joined at ", where, " but WORLD_SIZE is ", env_.world,
                                   ": this rank is one too many (a rank started twice, or another launch with the same id ",
                                   "on that port); give each launch its own MASTER_PORT"));
    if (me == env_.world) impl_->store->set("all_joined", std::vector<uint8_t>{1});
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(timeout - (std::chrono::steady_clock::now() - start));
      try {
        impl_->store->wait({"all_joined"}, std::clamp(left, std::chrono::milliseconds(100), std::chrono::milliseconds(10000)));
        break;
      } catch (const c10::DistStoreError&) {  // this slice of the wait passed
      }
      // (The count never passes WORLD_SIZE unseen: the rank that makes it WORLD_SIZE sets all_joined,
      // and any later one refuses itself above.)
      const int64_t joined = impl_->store->add("joined", 0);
      const auto waited = std::chrono::steady_clock::now() - start;
      if (waited > timeout)
        throw std::runtime_error(cat("only ", joined, " of ", env_.world, " ranks joined at ", where, " within ", timeout.count(),
                                     " s (launch id '", env_.job_id, "'): start every rank with the same MASTER_ADDR, MASTER_PORT, ",
                                     "WORLD_SIZE and launch id (ROPEX_JOB_ID, TORCHELASTIC_RUN_ID or SLURM_JOB_ID under srun)",
                                     defaults));
      log::info(cat("rank ", env_.rank, ": ", joined, " of ", env_.world, " ranks have joined at ", where, "; waiting (",
                    std::chrono::duration_cast<std::chrono::seconds>(timeout - waited).count(), " s left)"));
    }
  } catch (const c10::Error& e) {
    throw std::runtime_error(cat("rank ", env_.rank, ": the store at ", where, " failed during the rendezvous (",
                                 e.what_without_backtrace(), "): rank 0, which serves it, may have stopped (its log says "
                                 "why), or another job is using that port (then set MASTER_PORT to a free one)"));
  }
  make_backend(backend, timeout);
  log::info(cat("rank ", env_.rank, "/", env_.world, " joined (", backend, ", master ", env_.master_addr, ":", env_.master_port, ")"));
}

void Distributed::make_backend(const std::string& backend, std::chrono::seconds timeout) {
  if (backend == "gloo") {
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    const char* iface = std::getenv("GLOO_SOCKET_IFNAME");
    if (iface && *iface) opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(iface));
    else if (env_.local_world == env_.world) opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    impl_->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, env_.rank, env_.world, opts);
  } else if (backend == "nccl") {
#ifdef ROPEX_WITH_NCCL
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(env_.local_rank));
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = timeout;
    impl_->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, env_.rank, env_.world, opts);
#else
    throw std::runtime_error("this ropex was built without NCCL (nccl.h not found at configure time); use distributed.backend=gloo");
#endif
  } else {
    throw std::invalid_argument("unknown distributed backend '" + backend + "' (expected gloo or nccl)");
  }
}

bool Distributed::has_backend() const { return static_cast<bool>(impl_->backend); }

Distributed::~Distributed() {
  // NCCL wants an orderly end (its communicators are torn down, not aborted at exit, which warns
  // and can hang); Gloo's is its destructor.
  if (impl_ && impl_->backend && impl_->name == "nccl") {
    try {
      impl_->backend->shutdown();
    } catch (const std::exception& e) {
      log::warn(cat("shutting down NCCL: ", e.what()));
    }
  }
}

void Distributed::allreduce_sum(at::Tensor& t) {
  if (!impl_->backend) return;
  std::vector<at::Tensor> v{t};
  impl_->wait(impl_->backend->allreduce(v, c10d::AllreduceOptions{}), "all-reduce");
}

void PendingCollective::wait() {
  if (!wait_) return;
  auto w = std::move(wait_);
  wait_ = nullptr;
  w();
}

PendingCollective Distributed::allreduce_sum_async(at::Tensor& t) {
  PendingCollective p;
  if (!impl_->backend) return p;
  std::vector<at::Tensor> v{t};
  auto work = impl_->backend->allreduce(v, c10d::AllreduceOptions{});
  Impl* impl = impl_.get();
  p.wait_ = [impl, work] { impl->wait(work, "gradient all-reduce"); };
  return p;
}

// Gloo in torch 2.11 implements _reduce_scatter_base and _allgather_base for CPU tensors (float32
// and bfloat16 included; the 2-rank ZeRO tests run them), so Gloo and NCCL take the same calls and
// no all-reduce-then-slice fallback is needed. The closure keeps the c10d Work alive, and with it
// the tensors the collective reads and writes.
PendingCollective Distributed::reduce_scatter_sum(at::Tensor& out, at::Tensor& in) {
  TORCH_CHECK(in.numel() == out.numel() * env_.world && in.is_contiguous() && out.is_contiguous() &&
                  in.scalar_type() == out.scalar_type(),
              "reduce_scatter_sum: expects contiguous tensors of one dtype with in = world x out elements");
  PendingCollective p;
  if (!impl_->backend) {
    out.copy_(in);
    return p;
  }
  c10d::ReduceScatterOptions o;
  o.reduceOp = c10d::ReduceOp::SUM;
  auto work = impl_->backend->_reduce_scatter_base(out, in, o);
  Impl* impl = impl_.get();
  p.wait_ = [impl, work] { impl->wait(work, "gradient reduce-scatter"); };
  return p;
}

PendingCollective Distributed::allgather(at::Tensor& out, at::Tensor& in) {
  TORCH_CHECK(out.numel() == in.numel() * env_.world && in.is_contiguous() && out.is_contiguous() &&
                  in.scalar_type() == out.scalar_type(),
              "allgather: expects contiguous tensors of one dtype with out = world x in elements");
  PendingCollective p;
  if (!impl_->backend) {
    out.copy_(in);
    return p;
  }
  auto work = impl_->backend->_allgather_base(out, in, c10d::AllgatherOptions{});
  Impl* impl = impl_.get();
  p.wait_ = [impl, work] { impl->wait(work, "all-gather"); };
  return p;
}

void Distributed::broadcast(at::Tensor& t, int root) {
  if (!impl_->backend) return;
  std::vector<at::Tensor> v{t};
  c10d::BroadcastOptions o;
  o.rootRank = root;
  impl_->wait(impl_->backend->broadcast(v, o), "broadcast");
}

void Distributed::barrier() {
  if (!impl_->backend) return;
  // A tiny all-reduce is a barrier on every backend without device-binding caveats.
  at::Tensor t = at::zeros({1}, impl_->name == "nccl" ? at::Device(at::kCUDA, env_.local_rank) : at::Device(at::kCPU));
  allreduce_sum(t);
  (void)t.item<float>();  // NCCL's wait only orders the stream: make the host wait too
}

void Distributed::broadcast_params(const std::vector<at::Tensor>& params) {
  if (!impl_->backend) return;
  at::NoGradGuard ng;
  for (const auto& p : params) {
    at::Tensor t = p.detach();
    broadcast(t, 0);
  }
}

void Distributed::run_on_main(const std::function<void()>& work, std::chrono::seconds max_wait) {
  if (env_.world == 1) {
    work();
    return;
  }
  const std::string key = "main/" + std::to_string(impl_->gathers++);
  if (is_main()) {
    std::string status = "ok";
    try {
      work();
    } catch (const std::exception& e) {
      status = std::string("error: ") + e.what();
      impl_->store->set(key, std::vector<uint8_t>(status.begin(), status.end()));
      // This process serves the store: before it exits with the error, the others get a few seconds
      // to read it (each acknowledges), or they would only see the connection drop.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      try {
        while (impl_->store->add(key + "/read", 0) < env_.world - 1 && std::chrono::steady_clock::now() < deadline)
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
      } catch (const std::exception&) {
      }
      throw;
    }
    impl_->store->set(key, std::vector<uint8_t>(status.begin(), status.end()));
    return;
  }
  impl_->store->wait({key}, std::chrono::duration_cast<std::chrono::milliseconds>(max_wait));
  auto v = impl_->store->get(key);
  const std::string status(v.begin(), v.end());
  if (status != "ok") {
    impl_->store->add(key + "/read", 1);
    throw std::runtime_error("rank 0 failed: " + status.substr(7));
  }
}

std::vector<std::string> Distributed::allgather_string(const std::string& s) {
  if (env_.world == 1) return {s};
  const std::string prefix = "str/" + std::to_string(impl_->gathers++) + "/";
  impl_->store->set(prefix + std::to_string(env_.rank), std::vector<uint8_t>(s.begin(), s.end()));
  std::vector<std::string> out;
  for (int r = 0; r < env_.world; ++r) {
    auto v = impl_->store->get(prefix + std::to_string(r));
    out.emplace_back(v.begin(), v.end());
  }
  barrier();
  return out;
}

}  // namespace ropex

namespace ropex {

struct GradReducer::Impl {
  struct Bucket {
    std::vector<size_t> members;   // indices into params, in flat order
    std::vector<int64_t> offsets;  // each member's first element in `flat`
    int64_t numel = 0, padded = 0;  // padded: numel rounded up to a multiple of the world size (stages 1-2)
    int64_t pending = 0;
    bool launched = false;
    at::Tensor flat;  // the bucket's gradients, flattened (see the class comment for who owns it when)
    at::Tensor out;   // stages 1-2: this rank's chunk of the reduced bucket, a view into grad_shard
    PendingCollective work;
  };
  // Fires after the parameter's gradient has been accumulated into .grad.
  struct Hook : torch::autograd::FunctionPostHook {
    Hook(Impl* owner, size_t index) : owner(owner), index(index) {}
    torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                              const torch::autograd::variable_list&) override {
      owner->ready(index);
      return outputs;
    }
    Impl* owner;
    size_t index;
  };

  Distributed* dist = nullptr;
  int stage = 0;
  std::vector<at::Tensor> params;
  std::vector<Bucket> buckets;
  std::vector<size_t> bucket_of;
  at::Tensor grad_shard;  // stages 1-2
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;  // kept alive: hooks live on them
  std::mutex mutex;
  bool armed = false;
  int64_t launched_early = 0;
  // Stages 1-2: buckets whose reduce-scatter was launched and not yet waited for, oldest first. At
  // most kInFlight stay so: each launch retires the oldest beyond that, so neither packed gradients
  // (stage 2) nor the backend's copies of buckets pile up while backward runs.
  static constexpr size_t kInFlight = 2;
  std::deque<Bucket*> in_flight;

  // Stage 0 needs no reduction on one rank without a backend; the sharded stages still produce grad_shard.
  bool idle() const { return stage == 0 && !dist->has_backend(); }

  void add_bucket(Bucket b) {
    for (size_t i : b.members) bucket_of[i] = buckets.size();
    buckets.push_back(std::move(b));
  }

  void register_hooks() {
    for (size_t k = 0; k < params.size(); ++k) {
      auto acc = torch::autograd::impl::grad_accumulator(params[k]);
      if (!acc) throw std::runtime_error("GradReducer: a parameter is not a leaf that requires grad");
      acc->add_post_hook(std::make_unique<Hook>(this, k));
      accumulators.push_back(std::move(acc));
    }
  }

  void launch(Bucket& b) {
    if (stage != 1) {  // at stage 1 the gradients already are the flat buffer
      if (!b.flat.defined()) {  // stage 0: allocated once and kept; stage 2: for this reduction only
        b.flat = at::empty({b.padded}, params[b.members[0]].options());
        if (b.padded > b.numel) b.flat.narrow(0, b.numel, b.padded - b.numel).zero_();
      }
      for (size_t i = 0; i < b.members.size(); ++i) {
        at::Tensor& p = params[b.members[i]];
        at::Tensor slot = b.flat.narrow(0, b.offsets[i], p.numel());
        if (p.grad().defined()) slot.copy_(p.grad().reshape({-1}));
        else slot.zero_();
        if (stage == 2) p.mutable_grad().reset();  // the whole gradient is not kept after reduction
      }
    }
    b.work = stage == 0 ? dist->allreduce_sum_async(b.flat) : dist->reduce_scatter_sum(b.out, b.flat);
    b.launched = true;
    if (stage == 0) return;
    in_flight.push_back(&b);
    while (in_flight.size() > kInFlight) retire_oldest();
  }

  // Stages 1-2: waits for the oldest launched reduce-scatter (on NCCL: the current stream waits),
  // which lets go of its work object and whatever the backend holds for it (Gloo: a copy of the
  // bucket); at stage 2 also frees its flat buffer: only this rank's chunk, in grad_shard, stays.
  void retire_oldest() {
    Bucket* b = in_flight.front();
    in_flight.pop_front();
    b->work.wait();
    if (stage == 2) b->flat.reset();
  }

  void ready(size_t index) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!armed) return;
    Bucket& b = buckets[bucket_of[index]];
    if (--b.pending == 0) {
      launch(b);
      ++launched_early;
    }
  }
};

GradReducer::GradReducer(Distributed& dist, const std::vector<at::Tensor>& params, int64_t bucket_bytes)
    : impl_(std::make_unique<Impl>()) {
  impl_->dist = &dist;
  impl_->params = params;
  if (!dist.has_backend()) return;
  impl_->bucket_of.resize(params.size());
  std::vector<int64_t> bytes;
  std::vector<int> kind;
  for (const auto& p : params) {
    bytes.push_back(p.numel() * p.element_size());
    kind.push_back(static_cast<int>(p.scalar_type()));
  }
  for (auto& members : plan_buckets(bytes, kind, bucket_bytes)) {
    Impl::Bucket b;
    b.members = std::move(members);
    for (size_t k : b.members) {
      b.offsets.push_back(b.numel);
      b.numel += params[k].numel();
    }
    b.padded = b.numel;
    impl_->add_bucket(std::move(b));
  }
  impl_->register_hooks();
}

GradReducer::GradReducer(Distributed& dist, const std::vector<at::Tensor>& params, const ShardLayout& layout, int zero_stage)
    : impl_(std::make_unique<Impl>()) {
  if (zero_stage != 1 && zero_stage != 2) throw std::invalid_argument("GradReducer: zero_stage must be 1 or 2 here");
  if (layout.world != dist.world() || layout.rank != dist.rank())
    throw std::invalid_argument("GradReducer: the shard layout was planned for another rank or world size");
  impl_->dist = &dist;
  impl_->stage = zero_stage;
  impl_->params = params;
  impl_->bucket_of.resize(params.size());
  if (params.empty()) return;
  const at::TensorOptions opts = params[0].options();
  for (const auto& p : params)
    if (p.scalar_type() != params[0].scalar_type() || p.device() != params[0].device() || !p.is_contiguous())
      throw std::invalid_argument("GradReducer: sharded gradients need contiguous parameters of one dtype on one device");
  at::NoGradGuard ng;
  impl_->grad_shard = at::zeros({layout.shard_numel}, opts);
  for (const auto& lb : layout.buckets) {
    Impl::Bucket b;
    b.members = lb.members;
    b.offsets = lb.offsets;
    b.numel = lb.numel;
    b.padded = lb.padded;
    b.out = impl_->grad_shard.narrow(0, lb.shard_offset, lb.chunk);
    if (zero_stage == 1) {
      // Gradients as views into the bucket: backward accumulates into the flat buffer in place (its
      // AccumulateGrad adds into a defined .grad), so the reduce-scatter needs no copy.
      b.flat = at::zeros({b.padded}, opts);
      for (size_t i = 0; i < b.members.size(); ++i) {
        at::Tensor& p = impl_->params[b.members[i]];
        at::Tensor view = b.flat.narrow(0, b.offsets[i], p.numel()).view(p.sizes());
        if (p.grad().defined()) view.copy_(p.grad());
        p.mutable_grad() = view;
      }
    }
    impl_->add_bucket(std::move(b));
  }
  impl_->register_hooks();
}

GradReducer::~GradReducer() = default;

void GradReducer::arm() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (impl_->idle()) return;
  impl_->armed = true;
  impl_->launched_early = 0;
  for (auto& b : impl_->buckets) {
    b.pending = static_cast<int64_t>(b.members.size());
    b.launched = false;
  }
}

void GradReducer::finish() {
  if (impl_->idle()) return;
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->armed = false;
  at::NoGradGuard ng;
  for (auto& b : impl_->buckets) {
    if (!b.launched) impl_->launch(b);  // a parameter got no gradient in this backward
  }
  while (!impl_->in_flight.empty()) impl_->retire_oldest();
  for (auto& b : impl_->buckets) {
    b.work.wait();
    b.launched = false;
    if (impl_->stage != 0) continue;
    for (size_t i = 0; i < b.members.size(); ++i) {
      at::Tensor& p = impl_->params[b.members[i]];
      at::Tensor part = b.flat.narrow(0, b.offsets[i], p.numel()).view_as(p);
      if (p.grad().defined()) p.mutable_grad().copy_(part);
      else p.mutable_grad() = part.clone();
    }
  }
}

int64_t GradReducer::buckets() const { return static_cast<int64_t>(impl_->buckets.size()); }
int64_t GradReducer::launched_during_backward() const { return impl_->launched_early; }
const at::Tensor& GradReducer::grad_shard() const { return impl_->grad_shard; }

}  // namespace ropex
