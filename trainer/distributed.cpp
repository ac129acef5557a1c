// c10d process groups and collectives. See distributed.h. Version-specific c10d calls live here only.
#include "trainer/distributed.h"

#include "trainer/log.h"

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

#include <cstdlib>
#include <mutex>
#include <stdexcept>

namespace ropex {
namespace {
std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? std::optional<std::string>(v) : std::nullopt;
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
  if (e.world < 1) throw std::runtime_error("WORLD_SIZE must be >= 1, got " + std::to_string(e.world));
  if (e.rank < 0 || e.rank >= e.world)
    throw std::runtime_error("RANK=" + std::to_string(e.rank) + " is outside [0, WORLD_SIZE=" + std::to_string(e.world) + ")");
  if (e.world > 1 && !env("MASTER_ADDR") && slurm)
    throw std::runtime_error("under Slurm set MASTER_ADDR (e.g. the first host of $SLURM_JOB_NODELIST) and MASTER_PORT");
  return e;
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
  if (env_.world == 1) return;
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(env_.master_port);
  so.isServer = !env_.agent_store && env_.rank == 0;
  so.numWorkers = env_.agent_store ? std::nullopt : std::optional<size_t>(env_.world);
  so.waitWorkers = !env_.agent_store;
  so.timeout = timeout;
  auto tcp = c10::make_intrusive<c10d::TCPStore>(env_.master_addr, so);
  impl_->store = c10::make_intrusive<c10d::PrefixStore>("ropex/" + std::to_string(env_.restart_count), tcp);
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
  log::info(cat("rank ", env_.rank, "/", env_.world, " joined (", backend, ", master ", env_.master_addr, ":", env_.master_port, ")"));
}

Distributed::~Distributed() = default;

void Distributed::allreduce_sum(at::Tensor& t) {
  if (env_.world == 1) return;
  std::vector<at::Tensor> v{t};
  impl_->wait(impl_->backend->allreduce(v, c10d::AllreduceOptions{}), "all-reduce");
}

void Distributed::broadcast(at::Tensor& t, int root) {
  if (env_.world == 1) return;
  std::vector<at::Tensor> v{t};
  c10d::BroadcastOptions o;
  o.rootRank = root;
  impl_->wait(impl_->backend->broadcast(v, o), "broadcast");
}

void Distributed::barrier() {
  if (env_.world == 1) return;
  // A tiny all-reduce is a barrier on every backend without device-binding caveats.
  at::Tensor t = at::zeros({1}, impl_->name == "nccl" ? at::Device(at::kCUDA, env_.local_rank) : at::Device(at::kCPU));
  allreduce_sum(t);
  (void)t.item<float>();  // NCCL's wait only orders the stream: make the host wait too
}

void Distributed::broadcast_params(const std::vector<at::Tensor>& params) {
  if (env_.world == 1) return;
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
      throw;
    }
    impl_->store->set(key, std::vector<uint8_t>(status.begin(), status.end()));
    return;
  }
  impl_->store->wait({key}, std::chrono::duration_cast<std::chrono::milliseconds>(max_wait));
  auto v = impl_->store->get(key);
  const std::string status(v.begin(), v.end());
  if (status != "ok") throw std::runtime_error("rank 0 failed: " + status.substr(7));
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
    std::vector<size_t> members;  // indices into params
    int64_t pending = 0;
    at::Tensor flat;
    c10::intrusive_ptr<c10d::Work> work;
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
  std::vector<at::Tensor> params;
  std::vector<Bucket> buckets;
  std::vector<size_t> bucket_of;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;  // kept alive: hooks live on them
  std::mutex mutex;
  bool armed = false;
  int64_t launched_early = 0;

  void launch(Bucket& b) {
    if (!b.flat.defined()) {  // allocated once: a bucket's members and sizes never change
      int64_t n = 0;
      for (size_t i : b.members) n += params[i].numel();
      b.flat = at::empty({n}, params[b.members[0]].options());
    }
    int64_t offset = 0;
    for (size_t i : b.members) {
      at::Tensor slot = b.flat.narrow(0, offset, params[i].numel());
      const at::Tensor& g = params[i].grad();
      if (g.defined()) slot.copy_(g.reshape({-1}));
      else slot.zero_();
      offset += params[i].numel();
    }
    std::vector<at::Tensor> v{b.flat};
    b.work = dist->impl_->backend->allreduce(v, c10d::AllreduceOptions{});
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
  if (dist.world() == 1) return;
  impl_->bucket_of.resize(params.size());
  int64_t bytes = 0;
  for (size_t k = params.size(); k-- > 0;) {  // reverse parameter order
    if (impl_->buckets.empty() || bytes >= bucket_bytes || params[k].scalar_type() != params[impl_->buckets.back().members[0]].scalar_type()) {
      impl_->buckets.emplace_back();
      bytes = 0;
    }
    impl_->buckets.back().members.push_back(k);
    impl_->bucket_of[k] = impl_->buckets.size() - 1;
    bytes += params[k].numel() * params[k].element_size();
  }
  for (size_t k = 0; k < params.size(); ++k) {
    auto acc = torch::autograd::impl::grad_accumulator(params[k]);
    if (!acc) throw std::runtime_error("GradReducer: a parameter is not a leaf that requires grad");
    acc->add_post_hook(std::make_unique<Impl::Hook>(impl_.get(), k));
    impl_->accumulators.push_back(std::move(acc));
  }
}

GradReducer::~GradReducer() = default;

void GradReducer::arm() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (impl_->dist->world() == 1) return;
  impl_->armed = true;
  impl_->launched_early = 0;
  for (auto& b : impl_->buckets) {
    b.pending = static_cast<int64_t>(b.members.size());
    b.work.reset();
  }
}

void GradReducer::finish() {
  if (impl_->dist->world() == 1) return;
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->armed = false;
  at::NoGradGuard ng;
  for (auto& b : impl_->buckets) {
    if (!b.work) impl_->launch(b);  // a parameter got no gradient in this backward
    impl_->dist->impl_->wait(b.work, "gradient all-reduce");
    int64_t offset = 0;
    for (size_t i : b.members) {
      at::Tensor& p = impl_->params[i];
      at::Tensor part = b.flat.narrow(0, offset, p.numel()).view_as(p);
      if (p.grad().defined()) p.mutable_grad().copy_(part);
      else p.mutable_grad() = part.clone();
      offset += p.numel();
    }
    b.work.reset();
  }
}

int64_t GradReducer::buckets() const { return static_cast<int64_t>(impl_->buckets.size()); }
int64_t GradReducer::launched_during_backward() const { return impl_->launched_early; }

}  // namespace ropex
