// SPDX-License-Identifier: LGPL-2.1-or-later
// How a capture follows its target's streams: streams that start late or go away, two
// streams of one process mixed, another format, and backends started and stopped again or
// many at once on the shared connection. Fixture and environment: pw_fixture.h.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "core/monotonic_clock.h"
#include "pipewire/pipewire_backend.h"
#include "pw_fixture.h"

namespace procaudio {
namespace pwtest {
namespace {

TEST_F(PipeWireBackendTest, LateStreamsAreLinkedWithin50ms) {
  // The target process exists when the capture starts but opens its stream 1 s later.
  // Until then the capture is digital silence (nothing else is linked, no fallback); then its
  // stream is linked within 50 ms of its ports appearing.
  play({"--freq", "1000"});
  children_.push_back(std::make_unique<Child>());
  Child *target = children_.back().get();
  ASSERT_TRUE(target->spawn(tone_args({"--freq", "440", "--start-delay", "1000"})));
  PipeWireBackend backend(test_logger());
  RecordingSink &sink = new_sink(config_of().format);
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  ASSERT_TRUE(target->wait_for_lines(" streaming ", 1, 5000));
  // The first sound captured is the target's, after silence: what came before it was
  // nobody's audio, and the distractor never got in.
  ASSERT_TRUE(sink.wait_frames(sink.mark() + 24000, 3000));
  const size_t onset = sink.first_sound();
  EXPECT_GT(onset, 0u) << "no silence before the target streamed: was start() over 1 s?";
  ASSERT_TRUE(sink.wait_frames(onset + 4800, 3000));
  expect_tone(sink, 440, onset, 4800, "target's first 100 ms");
  expect_absent(sink, 1000, onset, 4800, "distractor, target's first 100 ms");
  const size_t begin = capture_with_links(backend, sink, 2, 1.0);
  expect_tone(sink, 440, begin, 48000, "late target");
  expect_absent(sink, 1000, begin, 48000, "distractor");
  const auto stats = backend.link_stats();
  std::printf("  max link delay %.3f ms\n", stats.max_link_delay_ns / 1e6);
  EXPECT_LT(stats.max_link_delay_ns, 50'000'000u);
  expect_timing(sink, "late start");
}

TEST_F(PipeWireBackendTest, VanishedStreamsAreForgotten) {
  // The target plays 440 Hz on; its child plays 660 Hz for 1 s and exits. Its links go with
  // it, nothing else takes their place, and the capture goes on with the target alone.
  Child *target = play({"--freq", "440", "--child", "660", "--child-seconds", "1"}, 2);
  play({"--freq", "1000"});
  PipeWireBackend backend(test_logger());
  RecordingSink &sink = new_sink(config_of().format);
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  capture_with_links(backend, sink, 4, 0.2);
  ASSERT_TRUE(target->wait_for_lines("role=child exit", 1, 5000));
  // Wait (on packets) until the child's two links are gone.
  const uint64_t deadline = monotonic_now_ns() + 3'000'000'000ull;
  while (backend.link_stats().links_active > 2 && monotonic_now_ns() < deadline) {
    const size_t next = sink.packet_count() + 1;
    sink.wait([&] { return sink.packets_.size() >= next; }, 200);
  }
  EXPECT_EQ(backend.link_stats().links_active, 2u);
  const size_t begin = sink.mark() + 4800;
  ASSERT_TRUE(sink.wait_frames(begin + 48000, 4000));
  expect_tone(sink, 440, begin, 48000, "target after the child left");
  expect_absent(sink, 660, begin, 48000, "child, gone");
  expect_absent(sink, 1000, begin, 48000, "distractor");
  const RecordingSink::Counts counts = sink.counts();
  EXPECT_EQ(counts.errors + counts.exits, 0);
}

TEST_F(PipeWireBackendTest, TwoStreamsOfOneProcessAreMixed) {
  // Stream 0: 440 Hz, 48 kHz stereo; stream 1: 660 Hz, 44.1 kHz mono.
  Child *target = play({"--freq", "440,660", "--streams", "2"}, 2);
  play({"--freq", "1000"});
  PipeWireBackend backend(test_logger());
  RecordingSink &sink = new_sink(config_of().format);
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  // stereo stream: FL->FL, FR->FR; mono stream: MONO->FL, MONO->FR
  const size_t begin = capture_with_links(backend, sink, 4, 1.0);
  expect_tone(sink, 440, begin, 48000, "stream 0 (48k stereo)");
  expect_tone(sink, 660, begin, 48000, "stream 1 (44.1k mono)");
  expect_absent(sink, 1000, begin, 48000, "distractor");
  EXPECT_EQ(backend.link_stats().streams_captured, 2u);
}

TEST_F(PipeWireBackendTest, MonoS16At16kHz) {
  Child *target = play({"--freq", "440"});
  play({"--freq", "1000"});
  PipeWireBackend backend(test_logger());
  const CaptureConfig config = config_of(SampleFormat::kS16LE, 16000, 1);
  RecordingSink &sink = new_sink(config.format);
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config));
  const size_t begin = capture_with_links(backend, sink, 2, 1.0);
  expect_tone(sink, 440, begin, 16000, "target, S16LE mono 16 kHz");
  expect_absent(sink, 1000, begin, 16000, "distractor");
  expect_timing(sink, "S16LE mono 16 kHz");
}

TEST_F(PipeWireBackendTest, ConcurrentOpenStartStopCloseOnTheSharedConnection) {
  // Four threads open, start, stop and close backends of their own at once: first while one
  // more backend captures throughout (the connection stays up; the steady capture must keep
  // its tone without an error), then alone (the last close of one thread tears the
  // connection down while another thread makes a new one). Nothing hangs or fails.
  Child *target = play({"--freq", "440"});
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  constexpr int kThreads = 4;
  constexpr int kRounds = 6;
  std::atomic<int> failures{0};
  std::atomic<int> rounds_with_audio{0};
  auto churn = [&] {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        for (int round = 0; round < kRounds; ++round) {
          RecordingSink sink(config_of().format, 1);  // outlives the backend's close()
          PipeWireBackend backend(test_logger());
          if (CaptureError error = backend.open(spec)) {
            std::printf("  open: %s / %s\n", error.message.c_str(), error.detail.c_str());
            failures++;
            continue;
          }
          if (CaptureError error = backend.start(config_of(), sink)) {
            std::printf("  start: %s / %s\n", error.message.c_str(), error.detail.c_str());
            failures++;
            continue;  // the destructor closes
          }
          if (sink.wait([&] { return sink.packets_.size() >= 3; }, 3000)) {
            rounds_with_audio++;
          }
          backend.stop();
          sink.mark_stopped();
          if (round % 2 == 0) {
            backend.close();  // else the destructor closes
          }
          const RecordingSink::Counts counts = sink.counts();
          if (counts.errors != 0 || counts.calls_after_stop != 0 || sink.overlaps_.load() != 0) {
            failures++;
          }
        }
      });
    }
    for (auto &thread : threads) {
      thread.join();
    }
  };

  PipeWireBackend steady(test_logger());
  RecordingSink &steady_sink = new_sink(config_of().format, 30);
  ASSERT_NO_FATAL_FAILURE(start_capture(steady, spec, steady_sink, config_of()));
  capture_with_links(steady, steady_sink, 2, 0.2);
  const size_t begin = steady_sink.mark();
  churn();
  ASSERT_TRUE(steady_sink.wait_frames(begin + 24000, 3000)) << "the steady capture stalled";
  expect_tone(steady_sink, 440, begin, 24000, "steady capture");
  EXPECT_EQ(steady_sink.counts().errors, 0);
  EXPECT_EQ(steady_sink.overlaps_.load(), 0);
  EXPECT_EQ(settled_thread_count("procaudio-pw", 1), 1);
  steady.stop();
  steady.close();
  EXPECT_EQ(settled_thread_count("procaudio-pw", 0), 0);

  churn();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(rounds_with_audio.load(), 2 * kThreads * kRounds);
  EXPECT_EQ(settled_thread_count("procaudio-pw", 0), 0) << "a connection outlived its last backend";
}

TEST_F(PipeWireBackendTest, StopAndStartAgain) {
  Child *target = play({"--freq", "440"});
  PipeWireBackend backend(test_logger());
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  ASSERT_FALSE(backend.open(spec));
  for (int round = 0; round < 3; ++round) {
    RecordingSink &sink = new_sink(config_of().format);
    const CaptureError error = backend.start(config_of(), sink);
    ASSERT_FALSE(error) << error.message;
    const size_t begin = capture_with_links(backend, sink, 2, 0.5);
    expect_tone(sink, 440, begin, 24000, "round");
    backend.stop();
    sink.mark_stopped();
    EXPECT_FALSE(sink.wait([&] { return sink.calls_after_stop_ > 0; }, 200));
    EXPECT_EQ(backend.link_stats().links_active, 0u);
  }
  backend.close();
}

}  // namespace
}  // namespace pwtest
}  // namespace procaudio
