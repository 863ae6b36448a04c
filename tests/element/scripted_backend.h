// SPDX-License-Identifier: LGPL-2.1-or-later
// A CaptureBackend that plays a scenario on its own thread, for the element's edge cases:
// packet sizes that do not divide the chunk, jittered and drifting device times, bursts,
// gaps, device discontinuities, silent packets, idle stretches, target exit, fatal errors.
// Never shipped in the plugin.
//
// The scripted device: frame i (counting real frames only) is captured at true time
// base + t_i, where t advances by frames / rate * (1 + drift) and jumps over gaps. Packets
// carry t_i plus jitter as their device time. F32 samples hold i itself (exact up to 2^24),
// S16 samples i mod 32768, so a test can tell every frame apart and look up its true time.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/capture_backend.h"

namespace procaudio::testing {

class Scenario {
 public:
  struct Step {
    enum Kind {
      kPackets,
      kGap,
      kRewind,
      kIdle,
      kExit,
      kError,
      kState,
      kHold,
      kSetDrift,
      kSetJitter,
      kSetPaced
    };
    explicit Step(Kind k) : kind(k) {}
    Kind kind;
    std::vector<uint32_t> sizes;  // kPackets: sizes, cycled
    uint32_t count = 0;           // kPackets: how many packets
    uint32_t flags = 0;           // kPackets: PacketFlags on each (discontinuity: first only)
    uint64_t ns = 0;              // kGap, kRewind, kIdle: duration; kSetJitter: max jitter
    uint64_t tick_ns = 0;         // kIdle: on_idle period
    double value = 0;             // kSetDrift: ppm; kSetPaced: 0/1
    CaptureError error;           // kError
    TargetState state;            // kState
  };

  // ---- Building (before start) ----
  Scenario &packets(uint32_t count, std::vector<uint32_t> sizes, uint32_t flags = 0);
  Scenario &gap(uint64_t ns);
  // The next packet's device time is `ns` earlier than where the stream is: a new process's
  // first audio captured before the fill of the wait ended.
  Scenario &rewind(uint64_t ns);
  // Reports a target state (what a backend says on every change).
  Scenario &state(TargetState::Phase phase, uint32_t pid, uint32_t streams);
  Scenario &idle(uint64_t ns, uint64_t tick_ns);
  Scenario &exit();
  Scenario &fail(CaptureError error);
  // Waits until release() (or stop): lets a test act while the capture thread is quiet.
  Scenario &hold();
  Scenario &drift_ppm(double ppm);
  Scenario &jitter(uint64_t max_ns);
  // Paced: each packet is delivered when its last frame would have been captured.
  Scenario &paced(bool paced);

  // What the backend reports before any capture.
  CaptureError open_error;
  uint64_t latency_ns = 5'000'000;
  uint64_t idle_margin_ns = 20'000'000;
  AudioFormat preferred;  // preferred_format()

  // ---- Observing (any thread) ----
  void release();
  // Waits, bounded, until the script ran to its end (or hit exit/error).
  bool wait_done(uint64_t timeout_ms);
  // Waits, bounded, until the script is held at a hold() step.
  bool wait_held(uint64_t timeout_ms);
  int starts() const;
  int opens() const;
  AudioFormat started_format() const;
  TargetSpec opened_target() const;
  // True capture time (monotonic ns) of real frame `index`.
  uint64_t true_time_of_frame(uint64_t index) const;
  uint64_t frames_delivered() const;

 private:
  friend class ScriptedBackend;
  Scenario &add(Step step);
  struct Run;  // one capture run's progress, guarded by mutex_
  mutable std::mutex mutex_;
  std::condition_variable cond_;
  std::vector<Step> steps_;
  bool released_ = false;
  bool held_ = false;
  bool done_ = false;
  int starts_ = 0;
  int opens_ = 0;
  AudioFormat format_;
  TargetSpec target_;
  // (first real frame index, true time) of every packet, for true_time_of_frame().
  std::vector<std::pair<uint64_t, uint64_t>> packet_times_;
  double rate_scale_ = 1.0;  // true ns per nominal ns, from the drift in force at each packet
  uint64_t frames_ = 0;
};

class ScriptedBackend final : public CaptureBackend {
 public:
  explicit ScriptedBackend(std::shared_ptr<Scenario> scenario);
  ~ScriptedBackend() override;

  AudioFormat preferred_format() const override { return scenario_->preferred; }
  CaptureError open(const TargetSpec &target) override;
  CaptureError start(const CaptureConfig &config, CaptureSink &sink) override;
  void stop() override;
  void close() override;
  uint64_t latency_ns() const override { return scenario_->latency_ns; }
  uint64_t idle_margin_ns() const override { return scenario_->idle_margin_ns; }
  uint32_t resolved_pid() const override { return pid_; }

 private:
  void run(CaptureConfig config, CaptureSink *sink);
  // Waits until `deadline_ns` (monotonic) or stop; false on stop.
  bool wait_until(uint64_t deadline_ns);

  std::shared_ptr<Scenario> scenario_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cond_;
  bool stopping_ = false;
  uint32_t pid_ = 0;
};

}  // namespace procaudio::testing
