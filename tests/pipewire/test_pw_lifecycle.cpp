// SPDX-License-Identifier: LGPL-2.1-or-later
// How a capture ends or pauses: the target exits, the PipeWire daemon dies (for one backend,
// and for every backend on the shared connection, which a new daemon on the same socket then
// replaces), and the graph stalls while the daemon is stopped. Fixture and environment:
// pw_fixture.h.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "core/monotonic_clock.h"
#include "pipewire/pipewire_backend.h"
#include "pw_fixture.h"

namespace procaudio {
namespace pwtest {
namespace {

TEST_F(PipeWireBackendTest, TargetExitEndsTheCaptureWithin500ms) {
  Child *target = play({"--freq", "440", "--seconds", "1.5"});
  play({"--freq", "1000"});
  const int pidfd = pidfd_open(target->pid());
  ASSERT_GE(pidfd, 0);
  PipeWireBackend backend(test_logger());
  RecordingSink &sink = new_sink(config_of().format);
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  // The moment the target exits, seen by this test through its own pidfd.
  ASSERT_TRUE(wait_readable(pidfd, 5000)) << "the target did not exit";
  const uint64_t exited_ns = monotonic_now_ns();
  close(pidfd);
  ASSERT_TRUE(sink.wait([&] { return sink.exited_; }, 2000)) << "no on_target_exit";
  const double delay_ms =
      (static_cast<double>(sink.exit_ns_) - static_cast<double>(exited_ns)) / 1e6;
  std::printf("  on_target_exit %.3f ms after the target exited\n", delay_ms);
  EXPECT_LT(delay_ms, 500.0);
  // Nothing after the end: no more packets, no second exit, no error.
  EXPECT_FALSE(sink.wait([&] { return sink.calls_after_end_ > 0; }, 300));
  const RecordingSink::Counts counts = sink.counts();
  EXPECT_EQ(counts.exits, 1);
  EXPECT_EQ(counts.errors, 0);
  waitpid(target->pid(), nullptr, 0);
  target->forget_pid();
  backend.stop();
  backend.close();
}

TEST_F(PipeWireBackendTest, DaemonDeathIsAnErrorWithin2s) {
  Child *target = play({"--freq", "440"});
  PipeWireBackend backend(test_logger());
  RecordingSink &sink = new_sink(config_of().format);
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  capture_with_links(backend, sink, 2, 0.3);
  uint64_t killed_ns = 0;
  ASSERT_NO_FATAL_FAILURE(kill_daemon(&killed_ns));
  ASSERT_NO_FATAL_FAILURE(expect_lost_within_2s(sink, killed_ns));
  const uint64_t stop_begin = monotonic_now_ns();
  backend.stop();
  backend.close();
  const double stop_ms = (monotonic_now_ns() - stop_begin) / 1e6;
  std::printf("  stop()+close() after the daemon died: %.3f ms\n", stop_ms);
  EXPECT_LT(stop_ms, 1000.0);
  EXPECT_EQ(sink.counts().errors, 1);
  EXPECT_EQ(sink.overlaps_.load(), 0);
}

TEST_F(PipeWireBackendTest, DaemonDeathEndsEveryBackendOnTheSharedConnection) {
  // Two backends share one connection; the daemon dies: each gets kDeviceLost within 2 s and
  // stops at once. With one of them still open (holding the dead connection), the daemon is
  // started again on the same socket: a new open() gets a new connection and captures, and
  // the old backend, opened again, joins it.
  Child *first = play({"--freq", "440"});
  Child *second = play({"--freq", "660"});
  PipeWireBackend a(test_logger());
  PipeWireBackend b(test_logger());
  RecordingSink &sink_a = new_sink(config_of().format);
  RecordingSink &sink_b = new_sink(config_of().format);
  TargetSpec spec_a;
  spec_a.pid = static_cast<uint32_t>(first->pid());
  TargetSpec spec_b;
  spec_b.pid = static_cast<uint32_t>(second->pid());
  ASSERT_NO_FATAL_FAILURE(start_capture(a, spec_a, sink_a, config_of()));
  ASSERT_NO_FATAL_FAILURE(start_capture(b, spec_b, sink_b, config_of()));
  capture_with_links(a, sink_a, 2, 0.3);
  capture_with_links(b, sink_b, 2, 0.3);
  EXPECT_EQ(settled_thread_count("procaudio-pw", 1), 1)
      << "the two backends do not share a connection";

  uint64_t killed_ns = 0;
  ASSERT_NO_FATAL_FAILURE(kill_daemon(&killed_ns));
  for (RecordingSink *sink : {&sink_a, &sink_b}) {
    ASSERT_NO_FATAL_FAILURE(expect_lost_within_2s(*sink, killed_ns));
  }
  uint64_t stop_begin = monotonic_now_ns();
  b.stop();
  b.close();
  a.stop();  // `a` stays open: the dead connection is still referenced
  EXPECT_LT((monotonic_now_ns() - stop_begin) / 1e6, 1000.0);
  EXPECT_EQ(sink_a.counts().errors, 1);
  EXPECT_EQ(sink_b.counts().errors, 1);
  EXPECT_EQ(sink_a.overlaps_.load(), 0);
  EXPECT_EQ(sink_b.overlaps_.load(), 0);
  // A stopped backend on the dead connection cannot start again.
  RecordingSink &sink_dead = new_sink(config_of().format);
  const CaptureError dead = a.start(config_of(), sink_dead);
  EXPECT_EQ(dead.kind, ErrorKind::kDeviceLost) << dead.message;

  // The daemon back, on the same socket.
  stop_children();
  const std::string dir = session_.dir();
  session_.stop();
  std::string why;
  ASSERT_TRUE(session_.start(/*pulse=*/true, &why, dir)) << why;
  Child *third = play({"--freq", "880"});
  PipeWireBackend c(test_logger());
  RecordingSink &sink_c = new_sink(config_of().format);
  TargetSpec spec_c;
  spec_c.pid = static_cast<uint32_t>(third->pid());
  ASSERT_NO_FATAL_FAILURE(start_capture(c, spec_c, sink_c, config_of()));
  size_t begin = capture_with_links(c, sink_c, 2, 0.5);
  expect_tone(sink_c, 880, begin, 24000, "new connection");
  EXPECT_EQ(sink_c.counts().errors, 0);

  // The old backend, opened again, shares the new connection; the dead one is gone with it.
  RecordingSink &sink_again = new_sink(config_of().format);
  ASSERT_NO_FATAL_FAILURE(start_capture(a, spec_c, sink_again, config_of()));
  begin = capture_with_links(a, sink_again, 2, 0.5);
  expect_tone(sink_again, 880, begin, 24000, "reopened");
  EXPECT_EQ(settled_thread_count("procaudio-pw", 1), 1);
  a.stop();
  a.close();
  c.stop();
  c.close();
  EXPECT_EQ(settled_thread_count("procaudio-pw", 0), 0)
      << "the last close() leaves no thread behind";
}

TEST_F(PipeWireBackendTest, IdleTicksWhileTheGraphStalls) {
  // SIGSTOP on the daemon stops the graph (its driver runs there): no packets come, so the
  // backend's idle tick tells the sink; after SIGCONT packets flow again, and no error.
  Child *target = play({"--freq", "440"});
  PipeWireBackend backend(test_logger());
  RecordingSink &sink = new_sink(config_of().format);
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  capture_with_links(backend, sink, 2, 0.3);
  const pid_t daemon = session_.daemon_pid("pipewire");
  ASSERT_GT(daemon, 0);
  ASSERT_EQ(kill(daemon, SIGSTOP), 0);
  const uint64_t stopped_ns = monotonic_now_ns();
  const bool idled = sink.wait([&] { return sink.idles_ >= 3; }, 3000);
  const double idle_ms = (monotonic_now_ns() - stopped_ns) / 1e6;
  const size_t packets_at_resume = sink.packet_count();
  ASSERT_EQ(kill(daemon, SIGCONT), 0);
  ASSERT_TRUE(idled) << "no on_idle while the graph stood still";
  std::printf("  3 idle ticks %.1f ms after the graph stopped (idle margin %.1f ms)\n", idle_ms,
              backend.idle_margin_ns() / 1e6);
  EXPECT_TRUE(sink.wait([&] { return sink.packets_.size() >= packets_at_resume + 10; }, 3000))
      << "packets did not come back after SIGCONT";
  EXPECT_EQ(sink.counts().errors, 0);
  EXPECT_EQ(sink.overlaps_.load(), 0);
}

}  // namespace
}  // namespace pwtest
}  // namespace procaudio
