// SPDX-License-Identifier: LGPL-2.1-or-later
// What the WasapiBackend tests share: QPC "now", configs, scripted packets, and a fixture with
// a backend whose activator hands out COM fakes of the process-loopback client and whose
// audio sessions are scripted.
#pragma once

#include <memory>
#include <vector>

#include "com_fakes.h"
#include "core/capture_engine.h"
#include "core/monotonic_clock.h"
#include "fake_sessions.h"
#include "test_support.h"
#include "wasapi/process_util.h"
#include "wasapi/wasapi_backend.h"

namespace procaudio {
namespace wasapi {
namespace testing {

constexpr DWORD kDiscontinuity = AUDCLNT_BUFFERFLAGS_DATA_DISCONTINUITY;
constexpr DWORD kSilent = AUDCLNT_BUFFERFLAGS_SILENT;
constexpr DWORD kTimestampError = AUDCLNT_BUFFERFLAGS_TIMESTAMP_ERROR;

// "Now" in QPC units of 100 ns, as the audio engine stamps packets.
inline uint64_t qpc_now() {
  return monotonic_now_ns() / 100;
}

inline CaptureConfig config_of(SampleFormat sf, uint32_t rate, uint32_t channels) {
  CaptureConfig config;
  config.format = {sf, rate, channels};
  config.buffer_ns = 200'000'000;
  return config;
}

// A packet of `frames` F32 stereo frames whose samples encode their index from `first`.
inline FakePacket packet(uint32_t frames, uint64_t qpc, DWORD flags = 0, float first = 0.f) {
  FakePacket p;
  p.frames = frames;
  p.flags = flags;
  p.qpc_position = qpc;
  p.data.resize(size_t{frames} * 8);
  float *samples = reinterpret_cast<float *>(p.data.data());
  for (uint32_t i = 0; i < frames * 2; ++i) {
    samples[i] = first + static_cast<float>(i);
  }
  return p;
}

class BackendTest : public ::testing::Test {
 protected:
  void SetUp() override { make_backend(10); }
  void TearDown() override { backend_->close(); }

  void make_backend(uint32_t wake_interval_ms,
                    uint64_t exit_drain_ns = WasapiBackend::kIdleMarginNs) {
    if (backend_) {
      backend_->close();
    }
    activator_ = std::make_shared<FakeActivator>();
    sessions_ = std::make_shared<FakeSessionSource>();
    WasapiBackendOptions options;
    options.sessions = sessions_;
    options.wake_interval_ms = wake_interval_ms;
    options.exit_drain_ns = exit_drain_ns;
    options.activator = activator_;
    options.query_version = [this](WindowsVersion &v) {
      v = version_;
      return true;
    };
    options.query_mix_rate = [this](uint32_t &rate) {
      rate = mix_rate_;
      return mix_rate_error_;
    };
    backend_.reset(new WasapiBackend({}, options));
  }

  // open() without a target, start() in F32LE 48 kHz stereo; the fake stream.
  std::shared_ptr<FakeStream> start_default(CaptureSink &sink,
                                            TargetSpec target = everything_but_us()) {
    const CaptureError open_error = backend_->open(target);
    EXPECT_FALSE(open_error) << open_error.message << " / " << open_error.detail;
    const CaptureError start_error =
        backend_->start(config_of(SampleFormat::kF32LE, 48000, 2), sink);
    EXPECT_FALSE(start_error) << start_error.message << " / " << start_error.detail;
    const size_t n = activator_->activations();
    return n > 0 && !open_error && !start_error ? activator_->stream(n - 1) : nullptr;
  }

  // A sink that outlives the backend (the fixture closes it in TearDown, after the test's
  // locals are gone, and its capture thread calls the sink until then).
  RecordingSink &new_sink(uint32_t bytes_per_frame) {
    sinks_.push_back(std::make_unique<RecordingSink>(bytes_per_frame));
    return *sinks_.back();
  }

  // The real engine as the sink, set up as the element sets it up for this backend.
  CaptureEngine &new_engine() {
    engines_.push_back(std::make_unique<CaptureEngine>());
    EngineSettings settings;
    settings.format = {SampleFormat::kF32LE, 48000, 2};
    settings.idle_margin_ns = WasapiBackend::kIdleMarginNs;
    settings.packet_period_ns = WasapiBackend::kDevicePeriodNs;
    engines_.back()->configure(settings);
    return *engines_.back();
  }

  std::vector<std::unique_ptr<CaptureEngine>> engines_;  // first: destroyed after the backend
  std::vector<std::unique_ptr<RecordingSink>> sinks_;    // first: destroyed after the backend
  WindowsVersion version_{10, 0, 19045};
  uint32_t mix_rate_ = 48000;
  CaptureError mix_rate_error_;
  std::shared_ptr<FakeActivator> activator_;
  std::shared_ptr<FakeSessionSource> sessions_;
  std::unique_ptr<WasapiBackend> backend_;
};

}  // namespace testing
}  // namespace wasapi
}  // namespace procaudio
