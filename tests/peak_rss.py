#!/usr/bin/env python3
"""Runs a command (stdout discarded, OMP_NUM_THREADS=2) and prints its peak resident set in bytes.

Measured from this small process on purpose: a child forked from a large process (the test binary)
starts with that process's high-water mark, which exec keeps in the child's ru_maxrss; forked from
here it starts from a few MB. Exits non-zero, naming the command, if the command fails.
"""
import os
import sys

pid = os.fork()
if pid == 0:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.environ["OMP_NUM_THREADS"] = "2"
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
code = os.waitstatus_to_exitcode(status)
if code != 0:
    sys.exit(f"peak_rss.py: exit status {code}: {' '.join(sys.argv[1:])}")
print(usage.ru_maxrss * 1024)
