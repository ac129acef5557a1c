// Async-signal-safe stop flags. See preemption.h.
#include "trainer/preemption.h"

#include <unistd.h>

#include <csignal>

namespace ropex {
namespace {
volatile std::sig_atomic_t g_signal = 0;
volatile std::sig_atomic_t g_interrupts = 0;
struct sigaction g_previous[4];
constexpr int kSignals[4] = {SIGTERM, SIGINT, SIGUSR1, SIGHUP};

extern "C" void on_stop_signal(int sig) {
  if (sig == SIGINT && ++g_interrupts >= 2) {
    static const char msg[] = "\nsecond interrupt: exiting without a checkpoint\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(130);
  }
  if (g_signal == 0) g_signal = sig;
}
}  // namespace

StopSignals::StopSignals() {
  g_signal = 0;
  g_interrupts = 0;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // a collective or a write in progress carries on
  for (int i = 0; i < 4; ++i) ::sigaction(kSignals[i], &sa, &g_previous[i]);
}

StopSignals::~StopSignals() {
  for (int i = 0; i < 4; ++i) ::sigaction(kSignals[i], &g_previous[i], nullptr);
}

bool StopSignals::requested() const { return g_signal != 0; }
int StopSignals::signal() const { return g_signal; }

}  // namespace ropex
