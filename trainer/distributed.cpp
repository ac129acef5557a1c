// c10d process groups and collectives. See distributed.h. Version-specific c10d calls live here only.
#include "trainer/distributed.h"

#include "trainer/log.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef ROPEX_WITH_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cstdlib>
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
}

void Distributed::allreduce_grads(const std::vector<at::Tensor>& params, int64_t bucket_bytes) {
  if (env_.world == 1) return;
  std::vector<at::Tensor> bucket;
  int64_t bytes = 0;
  auto flush = [&] {
    if (bucket.empty()) return;
    std::vector<at::Tensor> flat_parts;
    for (auto& g : bucket) flat_parts.push_back(g.reshape({-1}));
    at::Tensor flat = at::cat(flat_parts);
    allreduce_sum(flat);
    int64_t offset = 0;
    for (auto& g : bucket) {
      g.copy_(flat.narrow(0, offset, g.numel()).view_as(g));
      offset += g.numel();
    }
    bucket.clear();
    bytes = 0;
  };
  for (auto it = params.rbegin(); it != params.rend(); ++it) {  // reverse order: last layers finish first
    at::Tensor g = it->grad();
    if (!g.defined()) throw std::runtime_error("allreduce_grads: a parameter has no gradient");
    if (!bucket.empty() && g.scalar_type() != bucket.front().scalar_type()) flush();
    bucket.push_back(g);
    bytes += g.numel() * g.element_size();
    if (bytes >= bucket_bytes) flush();
  }
  flush();
}

void Distributed::broadcast_params(const std::vector<at::Tensor>& params) {
  if (env_.world == 1) return;
  at::NoGradGuard ng;
  for (const auto& p : params) {
    at::Tensor t = p.detach();
    broadcast(t, 0);
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
