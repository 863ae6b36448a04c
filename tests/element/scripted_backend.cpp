// SPDX-License-Identifier: LGPL-2.1-or-later
#include "scripted_backend.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/monotonic_clock.h"
#include "core/timeline.h"

namespace procaudio::testing {

// ---- Scenario ----

Scenario &Scenario::add(Step step) {
  steps_.push_back(std::move(step));
  return *this;
}

Scenario &Scenario::packets(uint32_t count, std::vector<uint32_t> sizes, uint32_t flags) {
  Step s(Step::kPackets);
  s.count = count;
  s.sizes = std::move(sizes);
  s.flags = flags;
  return add(s);
}

Scenario &Scenario::gap(uint64_t ns) {
  Step s(Step::kGap);
  s.ns = ns;
  return add(s);
}

Scenario &Scenario::rewind(uint64_t ns) {
  Step s(Step::kRewind);
  s.ns = ns;
  return add(s);
}

Scenario &Scenario::state(TargetState::Phase phase, uint32_t pid, uint32_t streams) {
  Step s(Step::kState);
  s.state.phase = phase;
  s.state.pid = pid;
  s.state.streams = streams;
  return add(s);
}

Scenario &Scenario::idle(uint64_t ns, uint64_t tick_ns) {
  Step s(Step::kIdle);
  s.ns = ns;
  s.tick_ns = tick_ns;
  return add(s);
}

Scenario &Scenario::exit() {
  return add(Step(Step::kExit));
}

Scenario &Scenario::fail(CaptureError error) {
  Step s(Step::kError);
  s.error = std::move(error);
  return add(s);
}

Scenario &Scenario::hold() {
  return add(Step(Step::kHold));
}

Scenario &Scenario::drift_ppm(double ppm) {
  Step s(Step::kSetDrift);
  s.value = ppm;
  return add(s);
}

Scenario &Scenario::jitter(uint64_t max_ns) {
  Step s(Step::kSetJitter);
  s.ns = max_ns;
  return add(s);
}

Scenario &Scenario::paced(bool paced) {
  Step s(Step::kSetPaced);
  s.value = paced ? 1 : 0;
  return add(s);
}

void Scenario::release() {
  std::lock_guard<std::mutex> lock(mutex_);
  released_ = true;
  cond_.notify_all();
}

bool Scenario::wait_done(uint64_t timeout_ms) {
  std::unique_lock<std::mutex> lock(mutex_);
  return cond_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [this] { return done_; });
}

bool Scenario::wait_held(uint64_t timeout_ms) {
  std::unique_lock<std::mutex> lock(mutex_);
  return cond_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [this] { return held_; });
}

int Scenario::starts() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return starts_;
}

int Scenario::opens() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return opens_;
}

AudioFormat Scenario::started_format() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return format_;
}

TargetSpec Scenario::opened_target() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return target_;
}

uint64_t Scenario::frames_delivered() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return frames_;
}

uint64_t Scenario::true_time_of_frame(uint64_t index) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = std::upper_bound(packet_times_.begin(), packet_times_.end(),
                             std::make_pair(index, UINT64_MAX));
  if (it == packet_times_.begin()) {
    return 0;
  }
  --it;
  const uint64_t nominal = scale_u64(index - it->first, 1'000'000'000, format_.rate);
  return it->second + static_cast<uint64_t>(static_cast<double>(nominal) * rate_scale_);
}

// ---- Backend ----

ScriptedBackend::ScriptedBackend(std::shared_ptr<Scenario> scenario)
    : scenario_(std::move(scenario)) {}

ScriptedBackend::~ScriptedBackend() {
  close();
}

CaptureError ScriptedBackend::open(const TargetSpec &target) {
  std::lock_guard<std::mutex> lock(scenario_->mutex_);
  ++scenario_->opens_;
  scenario_->target_ = target;
  pid_ = target.pid;
  return scenario_->open_error;
}

CaptureError ScriptedBackend::start(const CaptureConfig &config, CaptureSink &sink) {
  stop();
  {
    std::lock_guard<std::mutex> lock(scenario_->mutex_);
    ++scenario_->starts_;
    scenario_->format_ = config.format;
    scenario_->done_ = false;
    scenario_->held_ = false;
    scenario_->packet_times_.clear();
    scenario_->frames_ = 0;
  }
  stopping_ = false;
  thread_ = std::thread(&ScriptedBackend::run, this, config, &sink);
  return {};
}

void ScriptedBackend::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    cond_.notify_all();
  }
  {
    std::lock_guard<std::mutex> lock(scenario_->mutex_);
    scenario_->cond_.notify_all();
  }
  if (thread_.joinable()) {
    thread_.join();
  }
}

void ScriptedBackend::close() {
  stop();
}

bool ScriptedBackend::wait_until(uint64_t deadline_ns) {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    const uint64_t now = monotonic_now_ns();
    if (stopping_) {
      return false;
    }
    if (now >= deadline_ns) {
      return true;
    }
    cond_.wait_for(lock, std::chrono::nanoseconds(deadline_ns - now));
  }
}

void ScriptedBackend::run(CaptureConfig config, CaptureSink *sink) {
  const AudioFormat format = config.format;
  const uint64_t base = monotonic_now_ns();
  uint64_t t = 0;  // true device time since base
  double drift_ppm = 0;
  uint64_t jitter_max = 0;
  bool paced = false;
  uint64_t frame_index = 0;
  uint32_t jitter_seed = 12345;
  std::vector<uint8_t> data;

  auto finish = [this] {
    std::lock_guard<std::mutex> lock(scenario_->mutex_);
    scenario_->done_ = true;
    scenario_->cond_.notify_all();
  };
  auto stopping = [this] {
    std::lock_guard<std::mutex> lock(mutex_);
    return stopping_;
  };

  for (const Scenario::Step &step : scenario_->steps_) {
    if (stopping()) {
      return;
    }
    switch (step.kind) {
      case Scenario::Step::kSetDrift:
        drift_ppm = step.value;
        break;
      case Scenario::Step::kSetJitter:
        jitter_max = step.ns;
        break;
      case Scenario::Step::kSetPaced:
        paced = step.value != 0;
        break;
      case Scenario::Step::kGap:
        t += step.ns;
        break;
      case Scenario::Step::kRewind:
        t -= std::min(t, step.ns);
        break;
      case Scenario::Step::kState:
        sink->on_target_state(step.state);
        break;
      case Scenario::Step::kIdle:
        for (uint64_t waited = 0; waited < step.ns; waited += step.tick_ns) {
          t += step.tick_ns;
          if (paced && !wait_until(base + t)) {
            return;
          }
          sink->on_idle(base + t);
        }
        break;
      case Scenario::Step::kExit:
        sink->on_target_exit();
        finish();
        return;
      case Scenario::Step::kError:
        sink->on_error(step.error);
        finish();
        return;
      case Scenario::Step::kHold: {
        std::unique_lock<std::mutex> lock(scenario_->mutex_);
        scenario_->held_ = true;
        scenario_->cond_.notify_all();
        scenario_->cond_.wait(lock, [&] { return scenario_->released_ || stopping(); });
        scenario_->released_ = false;
        scenario_->held_ = false;
        break;
      }
      case Scenario::Step::kPackets:
        for (uint32_t k = 0; k < step.count; ++k) {
          const uint32_t frames = step.sizes[k % step.sizes.size()];
          const double scale = 1.0 + drift_ppm * 1e-6;
          const uint64_t duration = static_cast<uint64_t>(
              static_cast<double>(scale_u64(frames, 1'000'000'000, format.rate)) * scale);
          if (paced && !wait_until(base + t + duration)) {
            return;
          }
          data.resize(size_t{frames} * format.bytes_per_frame());
          for (uint32_t i = 0; i < frames; ++i) {
            for (uint32_t c = 0; c < format.channels; ++c) {
              const size_t at = (size_t{i} * format.channels + c);
              if (format.sample_format == SampleFormat::kF32LE) {
                const float v = static_cast<float>(frame_index + i);
                std::memcpy(&data[at * 4], &v, 4);
              } else {
                const int16_t v = static_cast<int16_t>((frame_index + i) % 32768);
                std::memcpy(&data[at * 2], &v, 2);
              }
            }
          }
          jitter_seed = jitter_seed * 1103515245u + 12345u;
          const int64_t jitter =
              jitter_max == 0 ? 0
                              : static_cast<int64_t>((jitter_seed >> 8) % (2 * jitter_max + 1)) -
                                    static_cast<int64_t>(jitter_max);
          Packet packet;
          packet.data = data.data();
          packet.frames = frames;
          packet.flags = (k == 0) ? step.flags : (step.flags & ~kPacketDiscontinuity);
          packet.device_time_ns = static_cast<uint64_t>(static_cast<int64_t>(base + t) + jitter);
          packet.arrival_time_ns = monotonic_now_ns();
          {
            std::lock_guard<std::mutex> lock(scenario_->mutex_);
            scenario_->packet_times_.emplace_back(frame_index, base + t);
            scenario_->rate_scale_ = scale;
            scenario_->frames_ = frame_index + frames;
          }
          sink->on_packet(packet);
          frame_index += frames;
          t += duration;
        }
        break;
    }
  }
  finish();
}

}  // namespace procaudio::testing
