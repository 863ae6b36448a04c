// SPDX-License-Identifier: LGPL-2.1-or-later
// Which audio a capture gets: the backend without a server (its error names the socket, its
// formats), /proc name and tree lookups, and targets by pid, by process name, with their tree
// included or excluded, a pulse client, no target at all, and ten targets side by side.
// Fixture and environment: pw_fixture.h.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/monotonic_clock.h"
#include "pipewire/pipewire_backend.h"
#include "pipewire/process_util.h"
#include "pw_fixture.h"

#ifndef TONE_PLAYER_PATH
#error "TONE_PLAYER_PATH must name the tone_player binary"
#endif

namespace procaudio {
namespace pwtest {
namespace {

TEST(PipeWireBackendNoServer, OpenWithoutPipeWireNamesSocketAndRuntimeDir) {
  char dir_template[] = "/tmp/procaudio-nopw-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  std::map<std::string, std::pair<bool, std::string>> saved;
  for (const char *name : {"XDG_RUNTIME_DIR", "PIPEWIRE_RUNTIME_DIR", "PIPEWIRE_REMOTE"}) {
    const char *old = std::getenv(name);
    saved[name] = old ? std::make_pair(true, std::string(old)) : std::make_pair(false, "");
    unsetenv(name);
  }
  setenv("XDG_RUNTIME_DIR", dir.c_str(), 1);

  PipeWireBackend backend(test_logger());
  TargetSpec target;  // no target: only the connection is checked
  target.mode = TargetMode::kExcludeTree;
  const CaptureError error = backend.open(target);
  std::printf("  message: %s\n  detail:  %s\n", error.message.c_str(), error.detail.c_str());
  EXPECT_EQ(error.kind, ErrorKind::kBackendUnavailable);
  EXPECT_NE(error.message.find(dir + "/pipewire-0"), std::string::npos);
  EXPECT_NE(error.message.find("XDG_RUNTIME_DIR=" + dir), std::string::npos);
  EXPECT_NE(error.detail.find("errno"), std::string::npos);

  unsetenv("XDG_RUNTIME_DIR");
  const CaptureError unset_error = backend.open(target);
  std::printf("  message: %s\n", unset_error.message.c_str());
  EXPECT_EQ(unset_error.kind, ErrorKind::kBackendUnavailable);
  EXPECT_NE(unset_error.message.find("XDG_RUNTIME_DIR is not set"), std::string::npos);

  for (const auto &kv : saved) {
    if (kv.second.first) {
      setenv(kv.first.c_str(), kv.second.second.c_str(), 1);
    } else {
      unsetenv(kv.first.c_str());
    }
  }
  rmdir(dir.c_str());
}

TEST(PipeWireBackendNoServer, FormatsCoverWhatTheElementNegotiates) {
  const procaudio::FormatCaps caps = PipeWireBackend::supported_formats();
  procaudio::AudioFormat format;
  for (SampleFormat f : {SampleFormat::kF32LE, SampleFormat::kS16LE}) {
    for (uint32_t rate : {8000u, 16000u, 44100u, 48000u, 96000u, 192000u}) {
      for (uint32_t channels : {1u, 2u}) {
        format.sample_format = f;
        format.rate = rate;
        format.channels = channels;
        EXPECT_TRUE(caps.accepts(format)) << rate << " Hz " << channels << " ch";
      }
    }
  }
  format.rate = 48000;
  format.channels = 3;
  EXPECT_FALSE(caps.accepts(format));
  format.channels = 2;
  format.rate = 7999;
  EXPECT_FALSE(caps.accepts(format));
  PipeWireBackend backend;
  EXPECT_GT(backend.latency_ns(), 0u);
  // A cycle's frames arrive at its start: the margin (the engine's floor) is below a quantum,
  // which the min latency covers anyway.
  EXPECT_GT(backend.idle_margin_ns(), 0u);
  EXPECT_LT(backend.idle_margin_ns(), backend.latency_ns());
}

TEST(ProcTree, ResolvesNamesAndTrees) {
  const uint32_t self = static_cast<uint32_t>(getpid());
  EXPECT_TRUE(procaudio::pipewire::process_exists(self));
  EXPECT_EQ(procaudio::pipewire::parent_pid(self), static_cast<uint32_t>(getppid()));
  EXPECT_TRUE(procaudio::pipewire::is_in_tree(self, self));
  EXPECT_TRUE(procaudio::pipewire::is_in_tree(self, static_cast<uint32_t>(getppid())));
  EXPECT_FALSE(procaudio::pipewire::is_in_tree(static_cast<uint32_t>(getppid()), self));
  EXPECT_FALSE(procaudio::pipewire::exe_basename(self).empty());
  uint32_t pid = 0;
  EXPECT_EQ(procaudio::pipewire::resolve_process_name("procaudio-no-such-process", pid).kind,
            ErrorKind::kNotFound);
  // A reaped child's pid names no process.
  const pid_t gone = fork();
  if (gone == 0) {
    _exit(0);
  }
  waitpid(gone, nullptr, 0);
  EXPECT_FALSE(procaudio::pipewire::process_exists(static_cast<uint32_t>(gone)));
  EXPECT_EQ(procaudio::pipewire::check_pid(static_cast<uint32_t>(gone)).kind, ErrorKind::kNotFound);
}

TEST_F(PipeWireBackendTest, NoSuchPidOrNameIsNotFound) {
  const pid_t gone = fork();
  if (gone == 0) {
    _exit(0);
  }
  waitpid(gone, nullptr, 0);
  PipeWireBackend backend(test_logger());
  TargetSpec by_pid;
  by_pid.pid = static_cast<uint32_t>(gone);
  CaptureError error = backend.open(by_pid);
  std::printf("  pid: %s / %s\n", error.message.c_str(), error.detail.c_str());
  EXPECT_EQ(error.kind, ErrorKind::kNotFound);
  EXPECT_NE(error.detail.find("errno"), std::string::npos);
  TargetSpec by_name;
  by_name.process_name = "procaudio-no-such-process";
  error = backend.open(by_name);
  std::printf("  name: %s / %s\n", error.message.c_str(), error.detail.c_str());
  EXPECT_EQ(error.kind, ErrorKind::kNotFound);
}

TEST_F(PipeWireBackendTest, CapturesOnlyTheTargetByPid) {
  Child *target = play({"--freq", "440"});
  play({"--freq", "1000"});  // distractor
  PipeWireBackend backend(test_logger());
  RecordingSink &sink = new_sink(config_of().format);
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  EXPECT_EQ(backend.resolved_pid(), spec.pid);
  const size_t begin = capture_with_links(backend, sink, 2, 1.0);
  expect_tone(sink, 440, begin, 48000, "target");
  expect_absent(sink, 1000, begin, 48000, "distractor");
  expect_timing(sink, "by pid");
  const auto stats = backend.link_stats();
  std::printf(
      "  links: %u active, %u made, %u failed, streams captured %u skipped %u, max link "
      "delay %.2f ms; latency %.2f ms, idle margin %.1f ms\n",
      stats.links_active, stats.links_made, stats.links_failed, stats.streams_captured,
      stats.streams_skipped, stats.max_link_delay_ns / 1e6, backend.latency_ns() / 1e6,
      backend.idle_margin_ns() / 1e6);
  EXPECT_EQ(stats.streams_captured, 1u);
  EXPECT_GE(stats.streams_skipped, 1u);
  EXPECT_EQ(stats.links_failed, 0u);
  {
    // on_idle before the first packet (a slow start) or in a stall of the graph (an
    // overloaded machine) is right; while packets flow, one per quantum, it is not: the
    // backend ticks only at the sink's deadline, kQuietNs after its last packet.
    std::lock_guard<std::mutex> lock(sink.mutex_);
    EXPECT_GE(sink.quietest_idle_ns_, RecordingSink::kQuietNs) << "on_idle while packets flow";
    EXPECT_EQ(sink.exits_ + sink.errors_, 0);
  }
  const uint64_t stop_begin = monotonic_now_ns();
  backend.stop();
  sink.mark_stopped();
  std::printf("  stop() took %.2f ms\n", (monotonic_now_ns() - stop_begin) / 1e6);
  // Nothing may reach the sink after stop() returned (bounded look: 300 ms).
  EXPECT_FALSE(sink.wait([&] { return sink.calls_after_stop_ > 0; }, 300));
  backend.close();
}

TEST_F(PipeWireBackendTest, CapturesByProcessName) {
  // A copy of tone_player under a name no other process has.
  const std::string copy = session_.dir() + "/pa-named-tone";
  {
    std::ifstream in(TONE_PLAYER_PATH, std::ios::binary);
    std::ofstream out(copy, std::ios::binary);
    out << in.rdbuf();
  }
  ASSERT_EQ(chmod(copy.c_str(), 0755), 0);
  children_.push_back(std::make_unique<Child>());
  Child *target = children_.back().get();
  ASSERT_TRUE(target->spawn({copy, "--freq", "440"}));
  ASSERT_TRUE(target->wait_for_lines(" streaming ", 1, 5000));
  play({"--freq", "1000"});
  PipeWireBackend backend(test_logger());
  RecordingSink &sink = new_sink(config_of().format);
  TargetSpec spec;
  spec.process_name = "pa-named-tone";
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  EXPECT_EQ(backend.resolved_pid(), static_cast<uint32_t>(target->pid()));
  const size_t begin = capture_with_links(backend, sink, 2, 1.0);
  expect_tone(sink, 440, begin, 48000, "target by name");
  expect_absent(sink, 1000, begin, 48000, "distractor");
}

TEST_F(PipeWireBackendTest, ExcludeTreeGivesTheOpposite) {
  // The target tree: 440 Hz in the target, 660 Hz in its child. The distractor: 1000 Hz.
  Child *target = play({"--freq", "440", "--child", "660"}, 2);
  play({"--freq", "1000"});
  PipeWireBackend backend(test_logger());
  RecordingSink &sink = new_sink(config_of().format);
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  spec.mode = TargetMode::kExcludeTree;
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  const size_t begin = capture_with_links(backend, sink, 2, 1.0);
  expect_tone(sink, 1000, begin, 48000, "everything else");
  expect_absent(sink, 440, begin, 48000, "excluded target");
  expect_absent(sink, 660, begin, 48000, "excluded child");
  EXPECT_EQ(backend.link_stats().streams_captured, 1u);
}

TEST_F(PipeWireBackendTest, IncludeTreeCapturesAGrandchild) {
  // target (440) -> child (silent) -> grandchild (660); distractor 1000.
  Child *target = play({"--freq", "440", "--grandchild", "660"}, 2);
  play({"--freq", "1000"});
  const pid_t grandchild = target->pid_of_role("grandchild");
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(procaudio::pipewire::is_in_tree(static_cast<uint32_t>(grandchild),
                                              static_cast<uint32_t>(target->pid())));
  PipeWireBackend backend(test_logger());
  RecordingSink &sink = new_sink(config_of().format);
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  const size_t begin = capture_with_links(backend, sink, 4, 1.0);
  expect_tone(sink, 440, begin, 48000, "target");
  expect_tone(sink, 660, begin, 48000, "grandchild");
  expect_absent(sink, 1000, begin, 48000, "distractor");
}

TEST_F(PipeWireBackendTest, PulseClientByPid) {
  const char *paplay = "/usr/bin/paplay";
  if (access(paplay, X_OK) != 0) {
    GTEST_SKIP() << "paplay (Debian package pulseaudio-utils) is not installed";
  }
  // A 440 Hz WAV, amplitude 0.5, 48 kHz stereo float, 20 s.
  const std::string wav = session_.dir() + "/tone440.wav";
  write_tone_wav(wav, 440, 20);
  play({"--freq", "1000"});
  children_.push_back(std::make_unique<Child>());
  Child *target = children_.back().get();
  ASSERT_TRUE(target->spawn({paplay, wav}));
  PipeWireBackend backend(test_logger());
  RecordingSink &sink = new_sink(config_of().format);
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  const size_t begin = capture_with_links(backend, sink, 2, 1.0);
  expect_tone(sink, 440, begin, 48000, "paplay (pulse client)");
  expect_absent(sink, 1000, begin, 48000, "distractor");
}

TEST_F(PipeWireBackendTest, NoTargetCapturesEverythingButThisProcess) {
  play({"--freq", "440"});
  play({"--freq", "1000"});
  PipeWireBackend backend(test_logger());
  RecordingSink &sink = new_sink(config_of().format);
  TargetSpec spec;  // no target, exclude-tree: everything but us
  spec.mode = TargetMode::kExcludeTree;
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  const size_t begin = capture_with_links(backend, sink, 4, 1.0);
  expect_tone(sink, 440, begin, 48000, "player 1");
  expect_tone(sink, 1000, begin, 48000, "player 2");
  // This process's own capture stream is an input, never a source of itself.
  EXPECT_EQ(backend.link_stats().streams_captured, 2u);
}

TEST_F(PipeWireBackendTest, TenBackendsEachGetOnlyTheirTone) {
  constexpr int kCount = 10;
  std::vector<double> freqs;
  std::vector<Child *> players;
  for (int i = 0; i < kCount; ++i) {
    freqs.push_back(300.0 + 110.0 * i);
    players.push_back(play({"--freq", std::to_string(freqs.back())}));
  }
  std::vector<std::unique_ptr<PipeWireBackend>> backends;
  std::vector<std::unique_ptr<RecordingSink>> sinks;
  for (int i = 0; i < kCount; ++i) {
    backends.push_back(std::make_unique<PipeWireBackend>(test_logger()));
    sinks.push_back(std::make_unique<RecordingSink>(config_of().format));
    TargetSpec spec;
    spec.pid = static_cast<uint32_t>(players[i]->pid());
    ASSERT_NO_FATAL_FAILURE(start_capture(*backends[i], spec, *sinks[i], config_of()));
  }
  for (int i = 0; i < kCount; ++i) {
    capture_with_links(*backends[i], *sinks[i], 2, 0.0);
  }
  // One PipeWire connection (thread loop, context, data loop) for all ten.
  EXPECT_EQ(settled_thread_count("procaudio-pw", 1), 1);
  // Three 1 s windows each. Twenty real-time clients on two cores may glitch (a player that
  // misses a cycle leaves a gap or a splice, whose click spreads over every frequency); a
  // wrong link would show in every window, so each backend is judged on its first window
  // whose own tone has no glitch.
  std::vector<size_t> begins;
  for (int i = 0; i < kCount; ++i) {
    begins.push_back(sinks[i]->mark());
  }
  for (int i = 0; i < kCount; ++i) {
    ASSERT_TRUE(sinks[i]->wait_frames(begins[i] + 3 * 48000, 8000)) << "backend " << i;
  }
  for (int i = 0; i < kCount; ++i) {
    const std::string what = "backend " + std::to_string(i);
    size_t begin = 0;
    int glitched = 0;
    for (int w = 0; w < 3; ++w) {
      if (!sinks[i]->has_glitch(begins[i] + w * 48000, 48000, freqs[i])) {
        begin = begins[i] + w * 48000;
        break;
      }
      glitched++;
    }
    ASSERT_LT(glitched, 3) << what
                           << ": a glitch in its tone in every window (overloaded machine?)";
    expect_tone(*sinks[i], freqs[i], begin, 48000, what.c_str());
    double loudest_other = -300;
    for (int j = 0; j < kCount; ++j) {
      if (j != i) {
        loudest_other = std::max(loudest_other, sinks[i]->tone_db(freqs[j], begin, 48000));
      }
    }
    std::printf("  %s: loudest other tone %.1f dBFS (%d glitched windows skipped)\n", what.c_str(),
                loudest_other, glitched);
    EXPECT_LE(loudest_other, kAbsentDb);
  }
  for (auto &b : backends) {
    b->stop();
    b->close();
  }
}

}  // namespace
}  // namespace pwtest
}  // namespace procaudio
