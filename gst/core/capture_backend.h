// SPDX-License-Identifier: LGPL-2.1-or-later
// The interface every platform backend implements, and the sink its capture thread feeds.
//
// Life cycle, driven by the element's state changes:
//   open()   READY->PAUSED   resolve and check the target, connect to the audio service
//   start()  ->PLAYING       begin delivering packets to the sink from the backend's own thread
//   stop()   PLAYING->       stop delivering; start() may follow again
//   close()  PAUSED->READY
// A backend's capture code knows nothing of GStreamer.
#pragma once

#include <cstdint>

#include "audio_format.h"
#include "capture_error.h"
#include "packet.h"
#include "target_spec.h"

namespace procaudio {

// What the backend sees of the target, reported to the sink on every change.
struct TargetState {
  enum class Phase : uint8_t {
    kWaiting,    // no process to capture yet: not started, or gone and followed (kWait)
    kCapturing,  // the target's process is attached: its audio streams are captured
    kExited,     // the target's process exited
  };
  Phase phase = Phase::kWaiting;
  uint32_t pid = 0;      // the process attached or exited; 0 while waiting
  uint32_t streams = 0;  // the target's audio streams captured now

  bool operator==(const TargetState &o) const {
    return phase == o.phase && pid == o.pid && streams == o.streams;
  }
  bool operator!=(const TargetState &o) const { return !(*this == o); }
};

// "waiting", "capturing", "exited": the names the element's messages use.
const char *target_phase_name(TargetState::Phase phase);

// Called on the backend's capture thread only, never concurrently. Never blocks.
class CaptureSink {
 public:
  virtual ~CaptureSink() = default;
  virtual void on_packet(const Packet &packet) = 0;
  // A tick: the backend's wait timed out or its timer fired, at `now_ns`. The sink alone
  // decides whether silence is due (an idle target may send no packets at all); a tick
  // while packets flow, or earlier than asked, is harmless.
  virtual void on_idle(uint64_t now_ns) = 0;
  // When the sink next wants a tick if no packet comes (monotonic ns; UINT64_MAX: none). A
  // backend re-arms its wait or timer for it after every packet and every tick.
  virtual uint64_t idle_deadline_ns() const = 0;
  // The target process is gone: the stream ends after what was captured. In exclude-tree
  // mode too: once the excluded root is gone its orphaned children could no longer be told
  // apart from everything else, and capturing them would break the exclusion.
  virtual void on_target_exit() = 0;
  // A fatal failure; the backend delivers nothing after it.
  virtual void on_error(const CaptureError &error) = 0;
  // The target's state changed (or the number of its streams captured): reported first by
  // start(), then on every change. kCapturing after kWaiting or kExited is a re-attachment
  // (the same name, a new process): the stream goes on, with a DISCONT where it begins.
  virtual void on_target_state(const TargetState &state) = 0;
};

struct CaptureConfig {
  AudioFormat format;
  uint64_t buffer_ns = 200'000'000;  // the element's buffer-time
};

class CaptureBackend {
 public:
  virtual ~CaptureBackend() = default;

  // The format to capture in when downstream leaves the choice open (caps fixation): one of
  // the formats the element's class declares (gst_proc_audio_src_class_set_formats()), the
  // one the OS converts least to. Valid after open().
  virtual AudioFormat preferred_format() const { return AudioFormat{}; }

  // Resolves and checks the target (a validated spec) and connects to the audio service.
  // No audio flows yet.
  virtual CaptureError open(const TargetSpec &target) = 0;

  // Starts capturing in `config.format` and calls `sink` from the backend's own thread
  // until stop(). The sink outlives the capture. Device times are reported as the OS gives
  // them (a PipeWire quantum change overlaps or skips by the quantum difference once): the
  // engine's timeline absorbs steps under its alignment threshold, re-anchors beyond it.
  virtual CaptureError start(const CaptureConfig &config, CaptureSink &sink) = 0;

  // Returns once the capture thread will not call the sink again. Idempotent.
  virtual void stop() = 0;

  // Releases what open() took. Idempotent; implies stop().
  virtual void close() = 0;

  // The packet period: how long the OS gathers frames before it hands them over (the
  // PipeWire quantum, the WASAPI device period).
  virtual uint64_t latency_ns() const = 0;

  // How late, after its first frame's capture time, the backend expects a packet before it
  // has seen any: the floor of the engine's idle margin, which then learns from the packets.
  virtual uint64_t idle_margin_ns() const = 0;

  // The pid actually targeted after open() (process-name resolved), 0 for none.
  virtual uint32_t resolved_pid() const = 0;
};

}  // namespace procaudio
