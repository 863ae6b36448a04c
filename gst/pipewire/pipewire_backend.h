// SPDX-License-Identifier: LGPL-2.1-or-later
// The PipeWire capture backend: an own capture stream (pw_stream, INPUT) that this backend
// links, port by port, to the output streams of the targeted processes, and to nothing else.
//
// Connection: every backend of a process talking to the same PipeWire socket shares one
// connection (pw_thread_loop, pw_context and its data loop, pw_core, registry watch),
// reference-counted like pipewiresrc's GstPipeWireCore and torn down by the last close(); a
// connection the daemon dropped is replaced at the next open(). Each backend keeps its own
// capture stream, target decisions and links.
//
// Targets: a stream node's process is the kernel-given pid of its client, or, for PulseAudio
// clients, the pid the application reported, mapped to the host pid when it runs in a pid
// namespace (proc_identity.h); a stream nobody can be named for is never captured. With
// on-target-exit=wait the backend follows an application by name: it waits (idle, so GAP)
// until a stream node of a process of that name (or a child of one) appears in the registry,
// captures that process's tree, and on its exit (pidfd) reports it and waits again. Every
// change is a TargetState for the sink.
//
// Threads: the caller (open/start/stop/close), the shared pw_thread_loop (registry, links,
// the target's exit, errors) and the shared data loop, which runs the process callbacks
// (PW_STREAM_FLAG_RT_PROCESS) and is the only thread that ever calls a CaptureSink: target
// states and exit, idle ticks and errors are marshalled onto it, so one backend's sink calls
// are serialized by construction (different backends' sinks are called from that same
// thread). No GStreamer header here; PipeWire types stay in the .cpp.
#pragma once

#include <cstdint>
#include <memory>

#include "core/capture_backend.h"
#include "core/logger.h"

namespace procaudio {
namespace pipewire {

class PipeWireBackend final : public CaptureBackend {
 public:
  explicit PipeWireBackend(Logger logger = {});
  ~PipeWireBackend() override;
  PipeWireBackend(const PipeWireBackend &) = delete;
  PipeWireBackend &operator=(const PipeWireBackend &) = delete;

  // F32LE/S16LE, 8000..192000 Hz, 1 or 2 channels (PipeWire's adapter converts and resamples).
  static FormatCaps supported_formats();

  CaptureError open(const TargetSpec &target) override;
  CaptureError start(const CaptureConfig &config, CaptureSink &sink) override;
  void stop() override;
  void close() override;
  uint64_t latency_ns() const override;
  uint64_t idle_margin_ns() const override;
  uint32_t resolved_pid() const override;

  // What the registry watch did, for diagnostics and tests.
  struct LinkStats {
    uint32_t streams_captured = 0;  // application output streams captured (ever, this start)
    uint32_t streams_skipped = 0;   // application output streams seen and left alone
    uint32_t links_active = 0;      // links currently in place
    uint32_t links_made = 0;        // links the server confirmed (ever, this start)
    uint32_t links_failed = 0;      // links the server refused
    uint32_t links_lost = 0;        // links another client destroyed (made again)
    // Longest time from a captured stream's last output port appearing to its link being
    // confirmed by the server, ns.
    uint64_t max_link_delay_ns = 0;
  };
  LinkStats link_stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace pipewire
}  // namespace procaudio
