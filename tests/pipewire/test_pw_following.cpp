// SPDX-License-Identifier: LGPL-2.1-or-later
// Following an application by name (on-target-exit=wait), the target's states and stream
// counts, and whose streams are whose: a copy of tone_player under a name no other process
// has plays, exits and plays again; a distractor plays throughout. What the sink gets is what
// the element turns into procaudio-target messages and GAP silence.
// Fixture and environment: pw_fixture.h.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "core/monotonic_clock.h"
#include "pipewire/proc_identity.h"
#include "pipewire/process_util.h"
#include "pw_fixture.h"

#ifndef TONE_PLAYER_PATH
#error "TONE_PLAYER_PATH must name the tone_player binary"
#endif

namespace procaudio {
namespace pwtest {
namespace {

using Phase = TargetState::Phase;

class FollowingTest : public PipeWireBackendTest {
 protected:
  // A copy of tone_player named `name` in the session's directory (gone with it).
  std::string copy_player(const std::string &name) {
    const std::string path = session_.dir() + "/" + name;
    std::ifstream in(TONE_PLAYER_PATH, std::ios::binary);
    std::ofstream out(path, std::ios::binary);
    out << in.rdbuf();
    out.close();
    EXPECT_EQ(chmod(path.c_str(), 0755), 0) << path;
    return path;
  }

  // Starts `exe` (a tone_player copy) with `args`, waits for `streams` streams.
  Child *play_as(const std::string &exe, const std::vector<std::string> &args, size_t streams = 1) {
    std::vector<std::string> argv{exe};
    argv.insert(argv.end(), args.begin(), args.end());
    children_.push_back(std::make_unique<Child>());
    Child *child = children_.back().get();
    EXPECT_TRUE(child->spawn(argv));
    if (streams > 0) {
      EXPECT_TRUE(child->wait_for_lines(" streaming ", streams, 5000)) << exe;
    }
    return child;
  }

  static TargetSpec follow(const std::string &name) {
    TargetSpec spec;
    spec.process_name = name;
    spec.on_exit = OnTargetExit::kWait;
    return spec;
  }

  // Waits until the sink's latest state is `want`.
  static bool wait_state(RecordingSink &sink, const TargetState &want, int timeout_ms = 5000) {
    return sink.wait([&] { return !sink.states_.empty() && sink.states_.back() == want; },
                     timeout_ms);
  }

  // The states as changes of phase or process (stream counts aside).
  static std::vector<std::pair<Phase, uint32_t>> changes(const std::vector<TargetState> &states) {
    std::vector<std::pair<Phase, uint32_t>> out;
    for (const TargetState &s : states) {
      if (out.empty() || out.back() != std::make_pair(s.phase, s.pid)) {
        out.emplace_back(s.phase, s.pid);
      }
    }
    return out;
  }

  // Captured by its pid: its tone and none of the others.
  void expect_only_own_tone(Child *target, double freq, const std::vector<double> &others);

  static std::string unique(const char *stem) {
    return std::string(stem) + std::to_string(getpid() % 100000);
  }
};

TEST_F(FollowingTest, ANameNotRunningIsWaitedForWhileOthersPlay) {
  play({"--freq", "1000"});  // a distractor: nothing of it may reach the sink
  PipeWireBackend backend(test_logger());
  RecordingSink &sink = new_sink(config_of().format);
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, follow(unique("pw_nobody")), sink, config_of()));
  EXPECT_EQ(backend.resolved_pid(), 0u);
  // Idle ticks, not packets: the engine makes GAP of them.
  ASSERT_TRUE(sink.wait([&] { return sink.idles_ >= 5; }, 5000));
  std::lock_guard<std::mutex> lock(sink.mutex_);
  EXPECT_TRUE(sink.packets_.empty()) << sink.packets_.size() << " packets while waiting";
  ASSERT_EQ(sink.states_.size(), 1u);
  EXPECT_EQ(sink.states_[0], (TargetState{Phase::kWaiting, 0, 0}));
  EXPECT_EQ(sink.exits_, 0);
  EXPECT_EQ(sink.errors_, 0);
}

TEST_F(FollowingTest, TheNamedProcessIsCapturedEachTimeItPlays) {
  const std::string name = unique("pw_follow");
  const std::string exe = copy_player(name);
  play({"--freq", "1000"});
  PipeWireBackend backend(test_logger());
  RecordingSink &sink = new_sink(config_of().format);
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, follow(name), sink, config_of()));
  ASSERT_TRUE(wait_state(sink, {Phase::kWaiting, 0, 0}));

  Child *first = play_as(exe, {"--freq", "440"});
  const auto first_pid = static_cast<uint32_t>(first->pid());
  ASSERT_TRUE(wait_state(sink, {Phase::kCapturing, first_pid, 1}));
  EXPECT_EQ(backend.resolved_pid(), first_pid);
  size_t begin = capture_with_links(backend, sink, 2, 0.5);
  expect_tone(sink, 440, begin, 24000, "first process");
  expect_absent(sink, 1000, begin, 24000, "first process");

  kill(first->pid(), SIGKILL);
  ASSERT_TRUE(wait_state(sink, {Phase::kWaiting, 0, 0}));
  EXPECT_EQ(sink.counts().exits, 0) << "the stream ended: it should wait";
  EXPECT_EQ(backend.resolved_pid(), 0u);
  // Waiting again: the distractor plays on, and nothing comes but idle ticks.
  const size_t packets_at_wait = sink.packet_count();
  int idle_mark;
  {
    std::lock_guard<std::mutex> lock(sink.mutex_);
    idle_mark = sink.idles_;
  }
  ASSERT_TRUE(sink.wait([&] { return sink.idles_ >= idle_mark + 5; }, 5000));
  const size_t stray = sink.packet_count() - packets_at_wait;
  EXPECT_LE(stray, 2u) << "packets while waiting (a cycle in flight at the exit, at most)";

  Child *second = play_as(exe, {"--freq", "660"});
  const auto second_pid = static_cast<uint32_t>(second->pid());
  ASSERT_TRUE(wait_state(sink, {Phase::kCapturing, second_pid, 1}));
  begin = capture_with_links(backend, sink, 2, 0.5);
  expect_tone(sink, 660, begin, 24000, "second process");
  expect_absent(sink, 440, begin, 24000, "second process");
  expect_absent(sink, 1000, begin, 24000, "second process");
  backend.stop();
  const std::vector<std::pair<Phase, uint32_t>> expected = {{Phase::kWaiting, 0},
                                                            {Phase::kCapturing, first_pid},
                                                            {Phase::kExited, first_pid},
                                                            {Phase::kWaiting, 0},
                                                            {Phase::kCapturing, second_pid}};
  EXPECT_EQ(changes(sink.states()), expected);
  EXPECT_EQ(sink.overlaps_.load(), 0);
}

TEST_F(FollowingTest, AnotherProcessOfTheNamePlayingAtTheExitIsCapturedThen) {
  const std::string name = unique("pw_twice");
  const std::string exe = copy_player(name);
  Child *older = play_as(exe, {"--freq", "440"});
  Child *younger = play_as(exe, {"--freq", "660"});
  const auto older_pid = static_cast<uint32_t>(older->pid());
  const auto younger_pid = static_cast<uint32_t>(younger->pid());
  PipeWireBackend backend(test_logger());
  RecordingSink &sink = new_sink(config_of().format);
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, follow(name), sink, config_of()));
  // Of two processes of the name, the oldest: only its tree.
  ASSERT_TRUE(wait_state(sink, {Phase::kCapturing, older_pid, 1}));
  size_t begin = capture_with_links(backend, sink, 2, 0.5);
  expect_tone(sink, 440, begin, 24000, "the older");
  expect_absent(sink, 660, begin, 24000, "the older");
  // It exits; the other plays on already, and no new stream will announce it.
  kill(older->pid(), SIGKILL);
  ASSERT_TRUE(wait_state(sink, {Phase::kCapturing, younger_pid, 1}));
  begin = capture_with_links(backend, sink, 2, 0.5);
  expect_tone(sink, 660, begin, 24000, "the younger");
  // (The killed process's stream may go before its exit is seen: a count of 0 between.)
  const std::vector<std::pair<Phase, uint32_t>> expected = {{Phase::kCapturing, older_pid},
                                                            {Phase::kExited, older_pid},
                                                            {Phase::kWaiting, 0},
                                                            {Phase::kCapturing, younger_pid}};
  EXPECT_EQ(changes(sink.states()), expected);
}

TEST_F(FollowingTest, AChildPlayingForTheNamedProcessAttachesTheParentsTree) {
  const std::string name = unique("pw_parent");
  const std::string exe = copy_player(name);
  PipeWireBackend backend(test_logger());
  RecordingSink &sink = new_sink(config_of().format);
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, follow(name), sink, config_of()));
  ASSERT_TRUE(wait_state(sink, {Phase::kWaiting, 0, 0}));
  // The parent plays nothing; its child (same executable) plays.
  Child *parent = play_as(exe, {"--streams", "0", "--child", "440"}, 0);
  ASSERT_TRUE(parent->wait_for_lines("role=child streaming", 1, 5000));
  ASSERT_TRUE(wait_state(sink, {Phase::kCapturing, static_cast<uint32_t>(parent->pid()), 1}));
  const size_t begin = capture_with_links(backend, sink, 2, 0.5);
  expect_tone(sink, 440, begin, 24000, "the child");
}

TEST_F(FollowingTest, WithoutWaitTheExitIsReportedThenTheStreamEnds) {
  Child *target = play({"--freq", "440", "--seconds", "1"});
  const auto pid = static_cast<uint32_t>(target->pid());
  PipeWireBackend backend(test_logger());
  RecordingSink &sink = new_sink(config_of().format);
  TargetSpec spec;
  spec.pid = pid;
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  ASSERT_TRUE(sink.wait([&] { return sink.exited_; }, 5000));
  const std::vector<TargetState> states = sink.states();
  ASSERT_GE(states.size(), 2u);
  EXPECT_EQ(states.front(), (TargetState{Phase::kCapturing, pid, 1}));
  EXPECT_EQ(states.back(), (TargetState{Phase::kExited, pid, 0}));
  EXPECT_EQ(sink.counts().errors, 0);
}

TEST_F(FollowingTest, TheTargetsStreamsAreCountedAsTheyComeAndGo) {
  // This test's own tree: the players it starts are its children.
  PipeWireBackend backend(test_logger());
  RecordingSink &sink = new_sink(config_of().format);
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(getpid());
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  const auto self = static_cast<uint32_t>(getpid());
  ASSERT_TRUE(wait_state(sink, {Phase::kCapturing, self, 0}));
  Child *one = play({"--freq", "440"});
  ASSERT_TRUE(wait_state(sink, {Phase::kCapturing, self, 1}));
  play({"--freq", "660", "--streams", "2"}, 2);
  ASSERT_TRUE(wait_state(sink, {Phase::kCapturing, self, 3}));
  one->stop();
  ASSERT_TRUE(wait_state(sink, {Phase::kCapturing, self, 2}));
}

TEST_F(FollowingTest, StopAndStartWhileWaitingSaysWaitingAgain) {
  PipeWireBackend backend(test_logger());
  RecordingSink &first = new_sink(config_of().format);
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, follow(unique("pw_nobody")), first, config_of()));
  ASSERT_TRUE(wait_state(first, {Phase::kWaiting, 0, 0}));
  backend.stop();
  RecordingSink &second = new_sink(config_of().format);
  ASSERT_FALSE(backend.start(config_of(), second));
  ASSERT_TRUE(wait_state(second, {Phase::kWaiting, 0, 0}));
}

// ---- whose stream is it

TEST_F(FollowingTest, TheKernelsPidWinsOverTheOneAClientClaims) {
  Child *honest = play({"--freq", "1000"});
  // It says it is the honest one's; its Client's pipewire.sec.pid (the kernel's) says not.
  Child *liar = play({"--freq", "440", "--claim-pid", std::to_string(honest->pid())});
  // And one that says, besides, that it is a PulseAudio client (whose reported pid would
  // count): its Client is not pipewire-pulse, so that is not believed either.
  setenv("PIPEWIRE_PROPS", "{ client.api=pipewire-pulse application.process.binary=tone_player }",
         1);
  Child *pretender = play({"--freq", "660", "--claim-pid", std::to_string(honest->pid())});
  unsetenv("PIPEWIRE_PROPS");
  expect_only_own_tone(honest, 1000, {440, 660});
  expect_only_own_tone(liar, 440, {1000, 660});
  expect_only_own_tone(pretender, 660, {1000, 440});
}

void FollowingTest::expect_only_own_tone(Child *target, double freq,
                                         const std::vector<double> &others) {
  {
    PipeWireBackend backend(test_logger());
    RecordingSink &sink = new_sink(config_of().format);
    TargetSpec spec;
    spec.pid = static_cast<uint32_t>(target->pid());
    ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
    const size_t begin = capture_with_links(backend, sink, 2, 0.5);
    expect_tone(sink, freq, begin, 24000, "its own stream");
    for (double other : others) {
      expect_absent(sink, other, begin, 24000, "another's stream");
    }
    backend.close();
  }
}

TEST(ProcIdentity, AReportedPidIsTheProcessThatRunsTheReportedBinary) {
  const auto self = static_cast<uint32_t>(getpid());
  const std::string binary = pipewire::exe_basename(self);
  ASSERT_FALSE(binary.empty());
  EXPECT_EQ(pipewire::ns_pids(self).back(), self);
  std::vector<uint32_t> candidates;
  EXPECT_EQ(pipewire::map_reported_pid(self, binary, &candidates), self);
  EXPECT_EQ(candidates, std::vector<uint32_t>{self});
  // Another binary, or none: not this process, and no guess.
  EXPECT_EQ(pipewire::map_reported_pid(self, "procaudio-not-this-one", &candidates), 0u);
  EXPECT_TRUE(candidates.empty());
  EXPECT_EQ(pipewire::map_reported_pid(self, "", &candidates), 0u);
}

TEST(ProcIdentity, ATruncatedCommIsNotAnotherLongName) {
  // The kernel keeps 15 characters of a name: "procaudio-longe" is the comm of a process
  // named "procaudio-longer-name" and of one named "procaudio-longest-name-of-all".
  int named[2];
  ASSERT_EQ(pipe(named), 0);
  const pid_t child = fork();
  if (child == 0) {
    prctl(PR_SET_NAME, "procaudio-longer-name");
    const char done = 1;
    (void)!write(named[1], &done, 1);  // named now
    pause();
    _exit(0);
  }
  ASSERT_GT(child, 0);
  close(named[1]);
  EXPECT_TRUE(wait_readable(named[0], 5000));
  close(named[0]);
  const auto pid = static_cast<uint32_t>(child);
  ASSERT_EQ(pipewire::comm(pid), "procaudio-longe");
  EXPECT_TRUE(pipewire::has_name(pid, "procaudio-longe"));
  // Its executable and command line are this test's: neither says the rest of the name.
  EXPECT_FALSE(pipewire::has_name(pid, "procaudio-longer-name"));
  EXPECT_FALSE(pipewire::has_name(pid, "procaudio-longest-name-of-all"));
  EXPECT_TRUE(pipewire::has_name(pid, pipewire::exe_basename(pid)));
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
}

TEST(ProcIdentity, AncestorsByName) {
  const auto self = static_cast<uint32_t>(getpid());
  const std::string name = pipewire::exe_basename(self);
  const pid_t child = fork();
  if (child == 0) {
    pause();  // until killed
    _exit(0);
  }
  ASSERT_GT(child, 0);
  // The child runs this program too: the topmost of the two is this process.
  EXPECT_EQ(pipewire::ancestor_named(static_cast<uint32_t>(child), name), self);
  EXPECT_EQ(pipewire::ancestor_named(self, name), self);
  EXPECT_EQ(pipewire::ancestor_named(self, "procaudio-no-such-name"), 0u);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_EQ(pipewire::ancestor_named(static_cast<uint32_t>(child), name), 0u);  // gone
}

}  // namespace
}  // namespace pwtest
}  // namespace procaudio
