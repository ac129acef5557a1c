// Stop requests from the scheduler or the user: SIGTERM (Slurm at the time limit, torchrun, kill),
// SIGUSR1 (Slurm's --signal warning), SIGHUP (a closed terminal; torchrun forwards it) and SIGINT
// (Ctrl-C) only set a flag here; the training loop
// agrees on it across ranks at the next step boundary (and between evaluation batches), saves a
// checkpoint and exits with kPreemptedExitCode. A second SIGINT exits at once (status 130), for a
// user who does not want to wait for the save.
//
// What this does not do: no communication, no saving (trainer/train.cpp); the handlers are
// installed only while a StopSignals object lives (the previous ones are restored after).
#pragma once

namespace ropex {

// ropex train's status after a stop request was honoured with a checkpoint (EX_TEMPFAIL: run the
// same command again to resume).
inline constexpr int kPreemptedExitCode = 75;

class StopSignals {
 public:
  StopSignals();   // installs the handlers
  ~StopSignals();  // restores the previous ones
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  bool requested() const;  // a stop signal arrived (this process)
  int signal() const;      // which (the first), 0 if none
};

}  // namespace ropex
