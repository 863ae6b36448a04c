// SPDX-License-Identifier: LGPL-2.1-or-later
// Following an application by its name (on-target-exit=wait) and counting its streams:
// WasapiBackend with real child processes (their start, their tree, their exit), COM fakes of
// the process-loopback client, and a scripted session source in place of Windows' session
// notifications (wine's IAudioSessionManager2 does not implement them: wasapi-wine-real
// shows that against wine's real one). What the element
// turns into procaudio-target messages is what the sink's on_target_state() receives here.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>

#include "backend_fixture.h"
#include "wasapi/win_string.h"

namespace procaudio {
namespace wasapi {
namespace {

using std::chrono::milliseconds;
using testing::BackendTest;
using testing::ChildCopy;
using testing::ChildProcess;
using testing::config_of;
using testing::packet;
using testing::qpc_now;
using testing::RecordingSink;
using Kind = RecordingSink::Kind;
using Phase = TargetState::Phase;

TargetSpec follow(const std::string &name) {
  TargetSpec target;
  target.process_name = name;
  target.on_exit = OnTargetExit::kWait;
  return target;
}

std::vector<TargetState> states_of(RecordingSink &sink) {
  std::vector<TargetState> states;
  for (const auto &call : sink.calls_of(Kind::kTargetState)) {
    states.push_back(call.state);
  }
  return states;
}

// Waits (bounded) until the sink's latest state is `want`.
bool wait_for_state(RecordingSink &sink, const TargetState &want,
                    milliseconds timeout = milliseconds(10000)) {
  return sink.wait_until(
      [&want](const std::vector<RecordingSink::Call> &calls) {
        for (auto it = calls.rbegin(); it != calls.rend(); ++it) {
          if (it->kind == Kind::kTargetState) {
            return it->state == want;
          }
        }
        return false;
      },
      timeout);
}

// The first sample of the packet delivered after call `from` (index in sink.calls()).
float first_sample_after(RecordingSink &sink, size_t from) {
  const auto calls = sink.calls();
  for (size_t i = from; i < calls.size(); ++i) {
    if (calls[i].kind == Kind::kPacket && !calls[i].bytes.empty()) {
      float sample;
      std::memcpy(&sample, calls[i].bytes.data(), sizeof sample);
      return sample;
    }
  }
  return -1.f;
}

class FollowingTest : public BackendTest {
 protected:
  void start_following(RecordingSink &sink, const std::string &name) {
    const CaptureError open_error = backend_->open(follow(name));
    ASSERT_FALSE(open_error) << open_error.message << " / " << open_error.detail;
    const CaptureError start_error =
        backend_->start(config_of(SampleFormat::kF32LE, 48000, 2), sink);
    ASSERT_FALSE(start_error) << start_error.message << " / " << start_error.detail;
  }
};

TEST_F(FollowingTest, ANameNotRunningIsWaitedForWithIdleTicks) {
  const ChildCopy exe;
  ASSERT_FALSE(exe.path().empty());
  RecordingSink &sink = new_sink(8);
  start_following(sink, exe.stem());
  // Nothing to capture yet: no client, a waiting state, and the stream kept live.
  ASSERT_TRUE(sink.wait_for(Kind::kIdle, 3));
  EXPECT_EQ(activator_->activations(), 0u);
  EXPECT_EQ(backend_->resolved_pid(), 0u);
  const auto states = states_of(sink);
  ASSERT_EQ(states.size(), 1u);
  EXPECT_EQ(states[0], (TargetState{Phase::kWaiting, 0, 0}));
  EXPECT_EQ(sink.count(Kind::kTargetExit), 0u);
  EXPECT_EQ(sink.count(Kind::kError), 0u);
  // The idle ticks are the time now: the engine fills the wait with GAP silence from them.
  const auto idles = sink.calls_of(Kind::kIdle);
  for (size_t i = 1; i < idles.size(); ++i) {
    EXPECT_GE(idles[i].idle_now_ns, idles[i - 1].idle_now_ns);
  }
}

TEST_F(FollowingTest, ItsFirstProcessIsCapturedWhenOneOfItsSessionsAppears) {
  const ChildCopy exe;
  ASSERT_FALSE(exe.path().empty());
  RecordingSink &sink = new_sink(8);
  start_following(sink, exe.stem());
  ASSERT_TRUE(wait_for_state(sink, {Phase::kWaiting, 0, 0}));

  ChildProcess app;
  std::string why;
  ASSERT_TRUE(app.start(30000, why, exe.path())) << why;
  // Running is not enough: the backend learns of it from its audio session, not by polling.
  sessions_->play(L"session-a", app.pid());
  ASSERT_TRUE(wait_for_state(sink, {Phase::kCapturing, app.pid(), 1}));
  ASSERT_EQ(activator_->activations(), 1u);
  const LoopbackTarget asked = activator_->requests().at(0);
  EXPECT_EQ(asked.pid, app.pid());
  EXPECT_TRUE(asked.include_tree);
  EXPECT_EQ(backend_->resolved_pid(), app.pid());

  const size_t before = sink.calls().size();
  activator_->stream(0)->push(packet(480, qpc_now(), 0, 7.f));
  ASSERT_TRUE(sink.wait_until([before](const std::vector<RecordingSink::Call> &calls) {
    for (size_t i = before; i < calls.size(); ++i) {
      if (calls[i].kind == Kind::kPacket) {
        return true;
      }
    }
    return false;
  }));
  EXPECT_EQ(first_sample_after(sink, before), 7.f);
}

TEST_F(FollowingTest, SessionsOfOtherProcessesAreNotFollowed) {
  const ChildCopy exe, other;
  ASSERT_FALSE(exe.path().empty());
  ASSERT_FALSE(other.path().empty());
  RecordingSink &sink = new_sink(8);
  start_following(sink, exe.stem());
  ASSERT_TRUE(wait_for_state(sink, {Phase::kWaiting, 0, 0}));
  ChildProcess distractor;
  std::string why;
  ASSERT_TRUE(distractor.start(30000, why, other.path())) << why;
  sessions_->play(L"distractor", distractor.pid());
  sessions_->play(L"system-sounds", 0);
  sessions_->play(L"a-pid-no-process-has", testing::unused_pid());
  // Then the one followed: its capture is the only one there ever is.
  ChildProcess app;
  ASSERT_TRUE(app.start(30000, why, exe.path())) << why;
  sessions_->play(L"app", app.pid());
  ASSERT_TRUE(wait_for_state(sink, {Phase::kCapturing, app.pid(), 1}));
  ASSERT_EQ(activator_->activations(), 1u);
  EXPECT_EQ(activator_->requests().at(0).pid, app.pid());
}

TEST_F(FollowingTest, AChildPlayingForTheNamedProcessAttachesItsTree) {
  // The named process does not play itself; its child (another program) does, as browsers
  // and games do. The tree captured is the named process's.
  const ChildCopy parent_exe, child_exe;
  ASSERT_FALSE(parent_exe.path().empty());
  ASSERT_FALSE(child_exe.path().empty());
  RecordingSink &sink = new_sink(8);
  start_following(sink, parent_exe.stem());
  ASSERT_TRUE(wait_for_state(sink, {Phase::kWaiting, 0, 0}));
  ChildProcess app;
  std::string why;
  ASSERT_TRUE(app.start(30000, why, parent_exe.path(), child_exe.path())) << why;
  uint32_t child_pid = 0;
  for (int attempt = 0; attempt < 200 && child_pid == 0; ++attempt) {
    std::vector<ProcessEntry> processes;
    ASSERT_FALSE(list_processes(processes));
    for (const ProcessEntry &p : processes) {
      if (p.parent_pid == app.pid() && process_name_matches(p.exe, to_utf16(child_exe.stem()))) {
        child_pid = p.pid;
      }
    }
    if (child_pid == 0) {
      WaitForSingleObject(app.handle(), 50);  // bounded: the child starts its own
    }
  }
  ASSERT_NE(child_pid, 0u) << "the child's child never started";
  sessions_->play(L"renderer", child_pid);
  ASSERT_TRUE(wait_for_state(sink, {Phase::kCapturing, app.pid(), 1}));
  const LoopbackTarget asked = activator_->requests().at(0);
  EXPECT_EQ(asked.pid, app.pid());
  EXPECT_TRUE(asked.include_tree);
}

TEST_F(FollowingTest, AnExitIsReportedThenTheNextProcessOfTheNameIsCaptured) {
  const ChildCopy exe;
  ASSERT_FALSE(exe.path().empty());
  ChildProcess first;
  std::string why;
  ASSERT_TRUE(first.start(30000, why, exe.path())) << why;
  sessions_->play(L"first", first.pid());
  // Running at the start: captured at once, its session counted.
  RecordingSink &sink = new_sink(8);
  start_following(sink, exe.stem());
  ASSERT_TRUE(wait_for_state(sink, {Phase::kCapturing, first.pid(), 1}));
  activator_->stream(0)->push(packet(480, qpc_now(), 0, 1.f));
  ASSERT_TRUE(sink.wait_for_packets(1));

  first.request_exit();
  ASSERT_EQ(first.wait(10000), 0);
  ASSERT_TRUE(wait_for_state(sink, {Phase::kWaiting, 0, 0}));
  // Still live: idle ticks after the exit, and no end of stream.
  const size_t calls_at_wait = sink.calls().size();
  ASSERT_TRUE(sink.wait_until([calls_at_wait](const std::vector<RecordingSink::Call> &calls) {
    size_t idles = 0;
    for (size_t i = calls_at_wait; i < calls.size(); ++i) {
      idles += calls[i].kind == Kind::kIdle;
    }
    return idles >= 3;
  }));
  EXPECT_EQ(sink.count(Kind::kTargetExit), 0u);
  EXPECT_EQ(backend_->resolved_pid(), 0u);
  sessions_->expire(L"first");

  ChildProcess second;
  ASSERT_TRUE(second.start(30000, why, exe.path())) << why;
  sessions_->play(L"second", second.pid());
  ASSERT_TRUE(wait_for_state(sink, {Phase::kCapturing, second.pid(), 1}));
  ASSERT_EQ(activator_->activations(), 2u);
  EXPECT_EQ(activator_->requests().at(1).pid, second.pid());
  const size_t before = sink.calls().size();
  activator_->stream(1)->push(packet(480, qpc_now(), 0, 2.f));
  ASSERT_TRUE(sink.wait_for_packets(2));
  EXPECT_EQ(first_sample_after(sink, before), 2.f);

  const std::vector<TargetState> expected = {
      {Phase::kCapturing, first.pid(), 1},
      {Phase::kExited, first.pid(), 0},
      {Phase::kWaiting, 0, 0},
      {Phase::kCapturing, second.pid(), 1},
  };
  EXPECT_EQ(states_of(sink), expected);
  EXPECT_EQ(sink.count(Kind::kError), 0u);
  EXPECT_EQ(sink.count(Kind::kTargetExit), 0u);
}

TEST_F(FollowingTest, WithoutWaitAnExitEndsTheStreamAfterSayingSo) {
  const ChildCopy exe;
  ASSERT_FALSE(exe.path().empty());
  ChildProcess app;
  std::string why;
  ASSERT_TRUE(app.start(30000, why, exe.path())) << why;
  TargetSpec target;
  target.process_name = exe.stem();  // on-target-exit=eos
  RecordingSink &sink = new_sink(8);
  ASSERT_TRUE(start_default(sink, target));
  app.request_exit();
  ASSERT_EQ(app.wait(10000), 0);
  ASSERT_TRUE(sink.wait_for(Kind::kTargetExit));
  // A process of that name playing now is not captured: the stream has ended.
  ChildProcess again;
  ASSERT_TRUE(again.start(30000, why, exe.path())) << why;
  sessions_->play(L"again", again.pid());
  const std::vector<TargetState> expected = {
      {Phase::kCapturing, app.pid(), 0},
      {Phase::kExited, app.pid(), 0},
  };
  EXPECT_EQ(states_of(sink), expected);
  EXPECT_EQ(activator_->activations(), 1u);
  const auto calls = sink.calls();
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.back().kind, Kind::kTargetExit);
}

TEST_F(FollowingTest, TheTargetsStreamsAreCountedAsTheyComeAndGo) {
  const ChildCopy exe, other;
  ASSERT_FALSE(exe.path().empty());
  ASSERT_FALSE(other.path().empty());
  ChildProcess app, distractor;
  std::string why;
  ASSERT_TRUE(app.start(30000, why, exe.path())) << why;
  ASSERT_TRUE(distractor.start(30000, why, other.path())) << why;
  TargetSpec target;
  target.pid = app.pid();  // include-tree by pid: counted, not followed
  RecordingSink &sink = new_sink(8);
  ASSERT_TRUE(start_default(sink, target));
  ASSERT_TRUE(wait_for_state(sink, {Phase::kCapturing, app.pid(), 0}));
  sessions_->play(L"one", app.pid());
  ASSERT_TRUE(wait_for_state(sink, {Phase::kCapturing, app.pid(), 1}));
  sessions_->play(L"two", app.pid());
  ASSERT_TRUE(wait_for_state(sink, {Phase::kCapturing, app.pid(), 2}));
  sessions_->play(L"not-its", distractor.pid());
  sessions_->pause(L"one");  // inactive sessions still count: they may play again
  sessions_->expire(L"two");
  ASSERT_TRUE(wait_for_state(sink, {Phase::kCapturing, app.pid(), 1}));
  const std::vector<TargetState> expected = {
      {Phase::kCapturing, app.pid(), 0},
      {Phase::kCapturing, app.pid(), 1},
      {Phase::kCapturing, app.pid(), 2},
      {Phase::kCapturing, app.pid(), 1},
  };
  EXPECT_EQ(states_of(sink), expected);  // one message per change, none for the distractor
}

TEST_F(FollowingTest, WithoutASessionWatchFollowingFailsClearlyAndCountingIsSkipped) {
  sessions_->start_error =
      CaptureError{ErrorKind::kBackendUnavailable,
                   "Windows does not report the audio sessions of this machine's "
                   "applications, which following an application by its name "
                   "(on-target-exit=wait) needs.",
                   "IAudioSessionManager2::RegisterSessionNotification: 0x80004001 "
                   "(E_NOTIMPL)"};
  const CaptureError error = backend_->open(follow("anything"));
  EXPECT_EQ(error.kind, ErrorKind::kBackendUnavailable);
  EXPECT_NE(error.message.find("on-target-exit=wait"), std::string::npos) << error.message;
  EXPECT_EQ(activator_->activations(), 0u);
  // Counting streams is not worth failing a capture by pid for: its counts stay 0.
  ChildProcess app;
  std::string why;
  ASSERT_TRUE(app.start(30000, why)) << why;
  TargetSpec target;
  target.pid = app.pid();
  RecordingSink &sink = new_sink(8);
  ASSERT_TRUE(start_default(sink, target));
  ASSERT_TRUE(wait_for_state(sink, {Phase::kCapturing, app.pid(), 0}));
}

TEST_F(FollowingTest, AnAttachThatFailsEndsTheStreamWithWhy) {
  const ChildCopy exe;
  ASSERT_FALSE(exe.path().empty());
  RecordingSink &sink = new_sink(8);
  start_following(sink, exe.stem());
  ASSERT_TRUE(wait_for_state(sink, {Phase::kWaiting, 0, 0}));
  activator_->next_error = CaptureError{ErrorKind::kAccessDenied, "Access to the audio was denied.",
                                        "ActivateAudioInterfaceAsync: 0x80070005 (E_ACCESSDENIED)"};
  ChildProcess app;
  std::string why;
  ASSERT_TRUE(app.start(30000, why, exe.path())) << why;
  sessions_->play(L"app", app.pid());
  ASSERT_TRUE(sink.wait_for(Kind::kError));
  EXPECT_EQ(sink.calls_of(Kind::kError)[0].error.kind, ErrorKind::kAccessDenied);
  EXPECT_EQ(backend_->resolved_pid(), 0u);  // nothing half-attached
}

TEST_F(FollowingTest, AStopAndStartAroundTheTargetsExitHandOverOnce) {
  const ChildCopy exe;
  ASSERT_FALSE(exe.path().empty());
  ChildProcess first;
  std::string why;
  ASSERT_TRUE(first.start(30000, why, exe.path())) << why;
  sessions_->play(L"first", first.pid());
  RecordingSink &sink = new_sink(8);
  start_following(sink, exe.stem());
  ASSERT_TRUE(wait_for_state(sink, {Phase::kCapturing, first.pid(), 1}));
  // The target exits while the capture is stopped: the restarted capture finds it gone at
  // once and hands over while the follower starts.
  backend_->stop();
  first.request_exit();
  ASSERT_EQ(first.wait(10000), 0);
  ASSERT_FALSE(backend_->start(config_of(SampleFormat::kF32LE, 48000, 2), sink));
  ASSERT_TRUE(wait_for_state(sink, {Phase::kWaiting, 0, 0}));
  sessions_->expire(L"first");
  ChildProcess second;
  ASSERT_TRUE(second.start(30000, why, exe.path())) << why;
  sessions_->play(L"second", second.pid());
  ASSERT_TRUE(wait_for_state(sink, {Phase::kCapturing, second.pid(), 1}));
  // And a restart after that reattach captures the new process again, with its client.
  backend_->stop();
  ASSERT_FALSE(backend_->start(config_of(SampleFormat::kF32LE, 48000, 2), sink));
  const size_t before = sink.calls().size();
  activator_->stream(1)->push(packet(480, qpc_now(), 0, 5.f));
  ASSERT_TRUE(sink.wait_until([before](const std::vector<RecordingSink::Call> &calls) {
    for (size_t i = before; i < calls.size(); ++i) {
      if (calls[i].kind == Kind::kPacket) {
        return true;
      }
    }
    return false;
  }));
  EXPECT_EQ(first_sample_after(sink, before), 5.f);
  const std::vector<TargetState> expected = {
      {Phase::kCapturing, first.pid(), 1},  {Phase::kCapturing, first.pid(), 1},
      {Phase::kExited, first.pid(), 0},     {Phase::kWaiting, 0, 0},
      {Phase::kCapturing, second.pid(), 1}, {Phase::kCapturing, second.pid(), 1},
  };
  EXPECT_EQ(states_of(sink), expected);
  EXPECT_EQ(activator_->activations(), 2u);
  EXPECT_EQ(backend_->resolved_pid(), second.pid());
  EXPECT_EQ(sink.count(Kind::kError), 0u);
  EXPECT_EQ(sink.count(Kind::kTargetExit), 0u);
}

TEST_F(FollowingTest, StopAndCloseWhileWaitingReturnPromptly) {
  const ChildCopy exe;
  ASSERT_FALSE(exe.path().empty());
  RecordingSink &sink = new_sink(8);
  start_following(sink, exe.stem());
  ASSERT_TRUE(sink.wait_for(Kind::kIdle, 1));
  backend_->stop();
  const size_t after_stop = sink.calls().size();
  ChildProcess app;
  std::string why;
  ASSERT_TRUE(app.start(30000, why, exe.path())) << why;
  sessions_->play(L"app", app.pid());  // after stop(): not attached, no sink call
  EXPECT_EQ(activator_->activations(), 0u);
  EXPECT_EQ(sink.calls().size(), after_stop);
  backend_->close();
  EXPECT_FALSE(sessions_->started());
}

}  // namespace
}  // namespace wasapi
}  // namespace procaudio
