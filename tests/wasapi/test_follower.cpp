// SPDX-License-Identifier: LGPL-2.1-or-later
// TargetFollower on its own, with hooks of the test's in place of the backend's: a process of
// the name followed that cannot be held (it exited, refused access, or its pid was reused) is
// not the stream's end, an attach that fails is; and a hand-over is taken exactly once however
// it falls around a stop() and a start(). The sessions are scripted, the processes real.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fake_sessions.h"
#include "test_support.h"
#include "wasapi/target_follower.h"

namespace procaudio {
namespace wasapi {
namespace {

using testing::ChildCopy;
using testing::ChildProcess;
using testing::FakeSessionSource;
using testing::RecordingSink;
using Kind = RecordingSink::Kind;
using Phase = TargetState::Phase;

// The backend's side of the hooks: records what the follower asked, answers as the test says.
class Backend {
 public:
  // What hold() and attach() answer for a pid; default: success.
  std::function<CaptureError(uint32_t)> hold_answer = [](uint32_t) { return CaptureError{}; };
  std::function<CaptureError(uint32_t)> attach_answer = [](uint32_t) { return CaptureError{}; };

  TargetFollower::Hooks hooks() {
    TargetFollower::Hooks h;
    h.hold = [this](uint32_t root, uint64_t snapshot_time) {
      const CaptureError error = hold_answer(root);
      std::lock_guard<std::mutex> lock(mutex_);
      holds_.push_back({root, snapshot_time});
      changed_.notify_all();
      return error;
    };
    h.attach = [this](uint32_t root, const TargetState &state) {
      const CaptureError error = attach_answer(root);
      std::lock_guard<std::mutex> lock(mutex_);
      attaches_.push_back(state);
      if (!error) {
        root_ = root;
      }
      changed_.notify_all();
      return error;
    };
    h.detach = [this] {
      std::lock_guard<std::mutex> lock(mutex_);
      ++detaches_;
      root_ = 0;
      changed_.notify_all();
    };
    h.report = [](const TargetState &) {};
    return h;
  }

  struct Hold {
    uint32_t root;
    uint64_t snapshot_time;
  };
  std::vector<Hold> holds() {
    std::lock_guard<std::mutex> lock(mutex_);
    return holds_;
  }
  std::vector<TargetState> attaches() {
    std::lock_guard<std::mutex> lock(mutex_);
    return attaches_;
  }
  int detaches() {
    std::lock_guard<std::mutex> lock(mutex_);
    return detaches_;
  }
  uint32_t root() {  // the process "captured" now, as the backend's attached_pid
    std::lock_guard<std::mutex> lock(mutex_);
    return root_;
  }
  // Waits (bounded) until `done()` holds, under the lock; false on timeout.
  bool wait_until(const std::function<bool()> &done) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(10), done);
  }
  size_t hold_count_locked() const { return holds_.size(); }
  size_t attach_count_locked() const { return attaches_.size(); }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Hold> holds_;
  std::vector<TargetState> attaches_;
  int detaches_ = 0;
  uint32_t root_ = 0;
};

std::vector<TargetState> states_of(RecordingSink &sink) {
  std::vector<TargetState> states;
  for (const auto &call : sink.calls_of(Kind::kTargetState)) {
    states.push_back(call.state);
  }
  return states;
}

bool wait_for_state(RecordingSink &sink, const TargetState &want) {
  return sink.wait_until([&want](const std::vector<RecordingSink::Call> &calls) {
    for (auto it = calls.rbegin(); it != calls.rend(); ++it) {
      if (it->kind == Kind::kTargetState) {
        return it->state == want;
      }
    }
    return false;
  });
}

// Waits for `n` more idle ticks than the sink has had: the follower is still waiting.
bool wait_for_more_ticks(RecordingSink &sink, size_t n) {
  return sink.wait_for(Kind::kIdle, sink.count(Kind::kIdle) + n);
}

uint64_t creation_time(HANDLE process) {
  FILETIME created, exited, kernel, user;
  if (!GetProcessTimes(process, &created, &exited, &kernel, &user)) {
    return 0;
  }
  return (static_cast<uint64_t>(created.dwHighDateTime) << 32) | created.dwLowDateTime;
}

constexpr uint32_t kTickMs = 10;

TEST(TargetFollowerHooks, AProcessThatCannotBeHeldKeepsItWaitingAndTheNextSessionAttaches) {
  const ChildCopy exe;
  ASSERT_FALSE(exe.path().empty());
  ChildProcess refused, next;
  std::string why;
  ASSERT_TRUE(refused.start(30000, why, exe.path())) << why;
  Backend backend;
  backend.hold_answer = [&refused](uint32_t pid) {
    // What OpenProcess says of another user's process; an exited one or a reused pid (kNotFound)
    // takes the same way.
    return pid == refused.pid()
               ? CaptureError{ErrorKind::kAccessDenied, "Access to the process was denied.",
                              "OpenProcess: error 5"}
               : CaptureError{};
  };
  auto sessions = std::make_shared<FakeSessionSource>();
  RecordingSink sink(8);  // outlives the follower's thread
  TargetFollower follower({}, backend.hooks());
  ASSERT_FALSE(follower.open(sessions, exe.stem(), true));
  follower.start(sink, 0, 0, kTickMs);
  ASSERT_TRUE(wait_for_state(sink, {Phase::kWaiting, 0, 0}));

  sessions->play(L"refused", refused.pid());
  ASSERT_TRUE(backend.wait_until([&] { return backend.hold_count_locked() >= 1; }));
  const auto first_hold = backend.holds().at(0);
  EXPECT_EQ(first_hold.root, refused.pid());
  // The snapshot that named it was taken after it started: a pid reused since is told apart.
  EXPECT_GE(first_hold.snapshot_time, creation_time(refused.handle()));
  // Still waiting: the stream goes on with idle ticks, nothing attached, no error.
  ASSERT_TRUE(wait_for_more_ticks(sink, 3));
  EXPECT_TRUE(backend.attaches().empty());
  EXPECT_EQ(sink.count(Kind::kError), 0u);
  EXPECT_EQ(states_of(sink), (std::vector<TargetState>{{Phase::kWaiting, 0, 0}}));

  // Another process of the name plays: that one is held and attached.
  ASSERT_TRUE(next.start(30000, why, exe.path())) << why;
  sessions->play(L"next", next.pid());
  ASSERT_TRUE(backend.wait_until([&] { return backend.attach_count_locked() >= 1; }));
  const auto attaches = backend.attaches();
  ASSERT_EQ(attaches.size(), 1u);
  EXPECT_EQ(attaches[0], (TargetState{Phase::kCapturing, next.pid(), 1}));
  EXPECT_EQ(backend.holds().back().root, next.pid());
  EXPECT_EQ(sink.count(Kind::kError), 0u);
  follower.close();
}

TEST(TargetFollowerHooks, AnAttachThatFailsEndsTheStreamWithItsError) {
  const ChildCopy exe;
  ASSERT_FALSE(exe.path().empty());
  ChildProcess app;
  std::string why;
  ASSERT_TRUE(app.start(30000, why, exe.path())) << why;
  Backend backend;
  const CaptureError refusal{ErrorKind::kFailed, "The audio service refused the capture.",
                             "IAudioClient::Initialize: 0x88890008"};
  backend.attach_answer = [&refusal](uint32_t) { return refusal; };
  auto sessions = std::make_shared<FakeSessionSource>();
  RecordingSink sink(8);  // outlives the follower's thread
  TargetFollower follower({}, backend.hooks());
  ASSERT_FALSE(follower.open(sessions, exe.stem(), true));
  follower.start(sink, 0, 0, kTickMs);
  ASSERT_TRUE(wait_for_state(sink, {Phase::kWaiting, 0, 0}));
  sessions->play(L"app", app.pid());
  ASSERT_TRUE(sink.wait_for(Kind::kError));
  const auto errors = sink.calls_of(Kind::kError);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].error.kind, refusal.kind);
  EXPECT_EQ(errors[0].error.message, refusal.message);
  ASSERT_EQ(backend.holds().size(), 1u);
  EXPECT_EQ(backend.holds()[0].root, app.pid());
  EXPECT_EQ(backend.attaches().size(), 1u);
  // The follower's thread ended with the error: stop() finds nothing more to join.
  follower.stop();
  const size_t calls = sink.calls().size();
  sessions->play(L"again", app.pid());
  EXPECT_EQ(sink.calls().size(), calls);
  EXPECT_EQ(backend.holds().size(), 1u);
  follower.close();
}

// The hand-over in the order the backend's start() can meet it: reset(), the capture started
// and its thread reporting the target's exit at once, then the follower's start().
TEST(TargetFollowerHooks, AHandOverReportedBeforeStartIsTakenOnce) {
  Backend backend;
  auto sessions = std::make_shared<FakeSessionSource>();
  RecordingSink sink(8);
  TargetFollower follower({}, backend.hooks());
  ASSERT_FALSE(follower.open(sessions, "procaudio-no-such-program", true));
  const uint32_t pid = testing::unused_pid();
  follower.reset();
  follower.target_exited(sink, pid);  // the new capture's thread, before start() below
  follower.start(sink, pid, 0, kTickMs);
  ASSERT_TRUE(wait_for_state(sink, {Phase::kWaiting, 0, 0}));
  ASSERT_TRUE(wait_for_more_ticks(sink, 3));
  EXPECT_EQ(backend.detaches(), 1);
  const std::vector<TargetState> expected = {{Phase::kExited, pid, 0}, {Phase::kWaiting, 0, 0}};
  EXPECT_EQ(states_of(sink), expected);
  EXPECT_EQ(sink.count(Kind::kTargetExit), 0u);
  follower.close();
}

// The capture thread reports the exit after the backend's stop() stopped the follower's
// thread and before it stopped the capture: the next start() waits for the next process,
// without restarting the dead capture and without a second exit.
TEST(TargetFollowerHooks, AHandOverAfterStopIsSettledByTheNextStart) {
  Backend backend;
  auto sessions = std::make_shared<FakeSessionSource>();
  RecordingSink sink(8);
  TargetFollower follower({}, backend.hooks());
  ASSERT_FALSE(follower.open(sessions, "procaudio-no-such-program", true));
  const uint32_t pid = testing::unused_pid();
  follower.start(sink, pid, 0, kTickMs);  // capturing `pid`
  follower.stop();
  follower.target_exited(sink, pid);
  // The backend's next start().
  follower.reset();
  EXPECT_EQ(backend.detaches(), 1);
  EXPECT_EQ(backend.root(), 0u);
  follower.start(sink, backend.root(), 0, kTickMs);
  ASSERT_TRUE(wait_for_state(sink, {Phase::kWaiting, 0, 0}));
  ASSERT_TRUE(wait_for_more_ticks(sink, 3));
  EXPECT_EQ(backend.detaches(), 1);
  const std::vector<TargetState> expected = {{Phase::kExited, pid, 0}, {Phase::kWaiting, 0, 0}};
  EXPECT_EQ(states_of(sink), expected);
  // Another stop/start: nothing is pending any more.
  follower.stop();
  follower.reset();
  follower.start(sink, backend.root(), 0, kTickMs);
  ASSERT_TRUE(wait_for_more_ticks(sink, 3));
  EXPECT_EQ(backend.detaches(), 1);
  follower.close();
}

}  // namespace
}  // namespace wasapi
}  // namespace procaudio
