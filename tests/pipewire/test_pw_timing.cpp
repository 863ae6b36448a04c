// SPDX-License-Identifier: LGPL-2.1-or-later
// The packets' timestamps: continuous across quantum changes and over a long capture, and the
// same at every capture rate. Fixture and environment (PROCAUDIO_PW_LONG_SECONDS):
// pw_fixture.h.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "pipewire/pipewire_backend.h"
#include "pw_fixture.h"

namespace procaudio {
namespace pwtest {
namespace {

TEST_F(PipeWireBackendTest, QuantumChangesKeepTimestampsContinuous) {
  Child *target = play({"--freq", "440"});
  PipeWireBackend backend(test_logger());
  RecordingSink &sink = new_sink(config_of().format);
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  capture_with_links(backend, sink, 2, 0.5);
  for (const char *quantum : {"256", "2048", "0"}) {
    const std::string cmd =
        std::string("pw-metadata -n settings 0 clock.force-quantum ") + quantum + " >/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    const size_t mark = sink.mark();
    ASSERT_TRUE(sink.wait_frames(mark + 48000 / 2, 3000));
  }
  const size_t begin = sink.mark();
  ASSERT_TRUE(sink.wait_frames(begin + 48000, 3000));
  expect_tone(sink, 440, begin, 48000, "after quantum changes");
  const RecordingSink::Timing t = sink.timing(1);
  EXPECT_GE(t.sizes.size(), 3u) << "the quantum did not change";
  expect_timing(sink, "quantum 1024 -> 256 -> 2048 -> default");
}

TEST_F(PipeWireBackendTest, LongCaptureStaysContinuous) {
  const char *env = std::getenv("PROCAUDIO_PW_LONG_SECONDS");
  const double seconds = env ? std::atof(env) : 60.0;
  Child *target = play({"--freq", "440"});
  play({"--freq", "1000"});
  PipeWireBackend backend(test_logger());
  RecordingSink &sink = new_sink(config_of().format, seconds + 10);
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  const size_t f0 = sink.mark();
  ASSERT_TRUE(sink.wait_frames(f0 + static_cast<size_t>(seconds * 48000),
                               static_cast<int>(seconds * 1000) + 5000));
  expect_timing(sink, "long capture");
  const size_t end = sink.mark();
  expect_tone(sink, 440, end - 48000, 48000, "last second");
  expect_absent(sink, 1000, end - 48000, 48000, "distractor, last second");
  // Frames, device time and arrival time span the same duration, but for the graph cycles
  // an overloaded machine skipped (expect_timing bounds how many): those add device and
  // arrival time, no frames.
  const double slipped = sink.timing().slipped_ms / 1e3;
  std::lock_guard<std::mutex> lock(sink.mutex_);
  const auto &first = sink.packets_.front();
  const auto &last = sink.packets_.back();
  const double device_span = (last.device_ns - first.device_ns) / 1e9;
  const double arrival_span = (last.arrival_ns - first.arrival_ns) / 1e9;
  const double frame_span = (last.first_frame - first.first_frame) / 48000.0;
  std::printf("  frames span %.6f s, device time %.6f s, arrival time %.6f s, %.3f ms slipped\n",
              frame_span, device_span, arrival_span, slipped * 1e3);
  EXPECT_NEAR(device_span - slipped, frame_span, 0.040);
  EXPECT_NEAR(arrival_span - slipped, frame_span, 0.1);
}

TEST_F(PipeWireBackendTest, TimestampsAgreeAcrossRates) {
  Child *target = play({"--freq", "100"});  // 10 ms period: offsets up to +-5 ms are unambiguous
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  for (uint32_t rate : {16000u, 44100u, 96000u}) {
    PipeWireBackend reference(test_logger()), other(test_logger());
    const CaptureConfig other_config = config_of(SampleFormat::kF32LE, rate, 2);
    RecordingSink &reference_sink = new_sink(config_of().format);
    RecordingSink &other_sink = new_sink(other_config.format);
    ASSERT_NO_FATAL_FAILURE(start_capture(reference, spec, reference_sink, config_of()));
    ASSERT_NO_FATAL_FAILURE(start_capture(other, spec, other_sink, other_config));
    capture_with_links(reference, reference_sink, 2, 1.0);
    capture_with_links(other, other_sink, 2, 1.0);
    uint64_t t1;
    {
      std::lock_guard<std::mutex> lock(reference_sink.mutex_);
      t1 = reference_sink.packets_.back().device_ns - 100'000'000;
    }
    const uint64_t t0 = t1 - 500'000'000;
    double d = phase_at(other_sink, 100, t0, t1) - phase_at(reference_sink, 100, t0, t1);
    d = std::remainder(d, 2 * M_PI);
    const double offset_ms = -d / (2 * M_PI * 100) * 1e3;
    std::printf("  %u Hz capture: timestamps %+.3f ms vs the 48 kHz capture\n", rate, offset_ms);
    EXPECT_LT(std::fabs(offset_ms), 0.5) << rate << " Hz";
    reference.close();
    other.close();
  }
}

}  // namespace
}  // namespace pwtest
}  // namespace procaudio
