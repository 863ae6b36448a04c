// SPDX-License-Identifier: LGPL-2.1-or-later
// /proc utilities for the PipeWire backend: which process is which, who is whose descendant,
// and a pidfd that becomes readable when a process exits. No GStreamer, no PipeWire.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/capture_error.h"

namespace procaudio {
namespace pipewire {

// A running process (not a zombie) with this pid exists.
bool process_exists(uint32_t pid);

// /proc/PID/comm without the newline ("" when unreadable). The kernel truncates it to 15 chars.
std::string comm(uint32_t pid);

// Base name of /proc/PID/exe ("" when unreadable, e.g. another user's process).
std::string exe_basename(uint32_t pid);

// Parent pid from /proc/PID/stat, 0 when unknown (gone, or pid 1's parent).
uint32_t parent_pid(uint32_t pid);

// Start time of the process in clock ticks since boot (/proc/PID/stat field 22), 0 if unknown.
// Tells a pid from a later process that reuses the number.
uint64_t start_time(uint32_t pid);

// pid is root or one of root's descendants (walks the ppid chain up from pid).
bool is_in_tree(uint32_t pid, uint32_t root);

// Every pid in /proc now; false (with `err`, an errno) if /proc cannot be read.
bool list_pids(std::vector<uint32_t> &pids, int *err = nullptr);

// Process `pid` is named `name`: the base name of /proc/PID/exe or /proc/PID/comm equal to
// it, or comm equal to its first 15 characters (the kernel's truncation) when the program or
// script its command line starts with has that name, or nothing can be read.
bool has_name(uint32_t pid, const std::string &name);

// The process `name` names (has_name()). With several matches, the root of their tree
// (pick_root_process()). None: kNotFound.
CaptureError resolve_process_name(const std::string &name, uint32_t &pid);

// The process a stream of `pid` plays for under `name`: the oldest of `pid` and its ancestors
// named so (include-tree captures that one's tree); 0 if neither it nor an ancestor is.
uint32_t ancestor_named(uint32_t pid, const std::string &name);

// The pid names a live process: none -> kNotFound, errno text in detail.
CaptureError check_pid(uint32_t pid);

// Watches one process for its exit: fd() becomes readable (poll/epoll) once it has exited.
// Uses pidfd_open (Linux 5.3+).
class ExitWatch {
 public:
  ExitWatch() = default;
  ~ExitWatch();
  ExitWatch(const ExitWatch &) = delete;
  ExitWatch &operator=(const ExitWatch &) = delete;

  // Opens the watch on `pid`; `start_time` (if not 0) must still match, so that a reused pid
  // is not mistaken for the target. kNotFound if the process is already gone.
  CaptureError open(uint32_t pid, uint64_t start_time = 0);
  void close();
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

}  // namespace pipewire
}  // namespace procaudio
