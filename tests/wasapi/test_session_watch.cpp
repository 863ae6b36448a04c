// SPDX-License-Identifier: LGPL-2.1-or-later
// SessionWatch, the COM glue between Windows' audio-session notifications and following an
// application by name, against COM fakes of IAudioSessionManager2 / IAudioSessionControl2
// that call its notifications on other threads, as the audio service does: the sessions there
// are, new ones, their state changes and ends, a device added later, a refused registration,
// and everything unregistered at the end; nothing registered from inside a notification (the
// documented deadlock: that is its worker's job), what is still queued at the stop released,
// and its COM objects freed. Then the backend following a real child process through it.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend_fixture.h"
#include "session_fakes.h"
#include "wasapi/sessions.h"

namespace procaudio {
namespace wasapi {
namespace {

using Microsoft::WRL::ComPtr;
using testing::ChildCopy;
using testing::ChildProcess;
using testing::FakeSessionControl;
using testing::FakeSessionManager;
using testing::FakeSessionManagers;
using State = SessionEvent::State;

// What the watch reported, in order. The watch reports from its worker thread: news of a
// notification arrives after the notification returned, and is waited for (bounded).
class Events {
 public:
  AudioSessionSource::Callback callback() {
    return [this](const SessionEvent &e) {
      std::lock_guard<std::mutex> lock(mutex_);
      events_.push_back(e);
      changed_.notify_all();
    };
  }
  // Waits (bounded) until there are `n` events not taken yet; false on timeout.
  bool wait_for(size_t n) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(10), [&] { return events_.size() >= n; });
  }
  std::vector<SessionEvent> take() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<SessionEvent> out;
    out.swap(events_);
    return out;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<SessionEvent> events_;
};

void expect_event(const SessionEvent &e, const wchar_t *id, uint32_t pid, State state) {
  EXPECT_EQ(e.id, id);
  EXPECT_EQ(e.pid, pid);
  EXPECT_EQ(e.state, state);
}

TEST(SessionWatch, ReportsTheSessionsThereAreThenNewOnesAndTheirStates) {
  auto speakers = FakeSessionManager::make(), headset = FakeSessionManager::make();
  speakers->add_existing(L"s1", 100, AudioSessionStateActive);
  speakers->add_existing(L"s2", 200, AudioSessionStateInactive);
  auto managers = std::make_shared<FakeSessionManagers>(
      std::vector<ComPtr<FakeSessionManager>>{speakers, headset});
  SessionWatch watch({}, managers);
  Events events;
  ASSERT_FALSE(watch.start(events.callback()));
  EXPECT_EQ(speakers->registered(), 1);
  EXPECT_EQ(headset->registered(), 1);
  auto now = events.take();
  ASSERT_EQ(now.size(), 2u);
  expect_event(now[0], L"s1", 100, State::kActive);
  expect_event(now[1], L"s2", 200, State::kInactive);

  // A new session on the other device, its states, and its end.
  ComPtr<FakeSessionControl> s3 = headset->create_session(L"s3", 300, AudioSessionStateActive);
  ASSERT_TRUE(events.wait_for(1));
  EXPECT_EQ(s3->registered(), 1);  // its state changes are listened to
  s3->set_state(AudioSessionStateInactive);
  s3->set_state(AudioSessionStateActive);
  s3->disconnect();
  ASSERT_TRUE(events.wait_for(4));
  auto later = events.take();
  ASSERT_EQ(later.size(), 4u);
  expect_event(later[0], L"s3", 300, State::kActive);
  expect_event(later[1], L"s3", 300, State::kInactive);
  expect_event(later[2], L"s3", 300, State::kActive);
  expect_event(later[3], L"s3", 300, State::kExpired);

  watch.stop();
  EXPECT_EQ(speakers->registered(), 0);
  EXPECT_EQ(headset->registered(), 0);
  EXPECT_EQ(s3->registered(), 0);  // unregistered when it was disconnected
  EXPECT_FALSE(managers->running());
  // A notification still in flight after stop() reports nothing.
  s3->set_state(AudioSessionStateExpired);
  EXPECT_TRUE(events.take().empty());
}

TEST(SessionWatch, ADeviceThatBecomesActiveLaterIsWatchedToo) {
  auto speakers = FakeSessionManager::make();
  auto managers =
      std::make_shared<FakeSessionManagers>(std::vector<ComPtr<FakeSessionManager>>{speakers});
  SessionWatch watch({}, managers);
  Events events;
  ASSERT_FALSE(watch.start(events.callback()));
  auto headset = FakeSessionManager::make();
  headset->add_existing(L"call", 4242, AudioSessionStateActive);
  managers->add(headset);  // plugged in
  ASSERT_TRUE(events.wait_for(1));
  EXPECT_EQ(headset->registered(), 1);
  headset->create_session(L"game", 4343, AudioSessionStateActive);
  ASSERT_TRUE(events.wait_for(2));
  auto seen = events.take();
  ASSERT_EQ(seen.size(), 2u);
  expect_event(seen[0], L"call", 4242, State::kActive);
  expect_event(seen[1], L"game", 4343, State::kActive);
  watch.stop();
  EXPECT_EQ(headset->registered(), 0);
}

TEST(SessionWatch, ARefusedRegistrationIsTheCleanErrorAndNothingStaysRegistered) {
  auto good = FakeSessionManager::make(), refusing = FakeSessionManager::make();
  refusing->register_result = E_NOTIMPL;  // what wine answers
  auto managers = std::make_shared<FakeSessionManagers>(
      std::vector<ComPtr<FakeSessionManager>>{good, refusing});
  SessionWatch watch({}, managers);
  Events events;
  const CaptureError error = watch.start(events.callback());
  EXPECT_EQ(error.kind, ErrorKind::kBackendUnavailable);
  EXPECT_NE(error.message.find("on-target-exit=wait"), std::string::npos) << error.message;
  EXPECT_NE(error.detail.find("RegisterSessionNotification"), std::string::npos) << error.detail;
  EXPECT_NE(error.detail.find("E_NOTIMPL"), std::string::npos) << error.detail;
  EXPECT_EQ(good->registered(), 0) << "the first device's registration was left behind";
  EXPECT_FALSE(managers->running());

  auto no_list = FakeSessionManager::make();
  no_list->enumerator_result = E_NOTIMPL;
  SessionWatch other(
      {}, std::make_shared<FakeSessionManagers>(std::vector<ComPtr<FakeSessionManager>>{no_list}));
  const CaptureError list_error = other.start(events.callback());
  EXPECT_EQ(list_error.kind, ErrorKind::kBackendUnavailable);
  EXPECT_NE(list_error.detail.find("GetSessionEnumerator"), std::string::npos);
  EXPECT_EQ(no_list->registered(), 0);
}

TEST(SessionWatch, StartAgainAfterStopReportsTheSessionsAfresh) {
  auto speakers = FakeSessionManager::make();
  speakers->add_existing(L"s1", 100, AudioSessionStateActive);
  SessionWatch watch(
      {}, std::make_shared<FakeSessionManagers>(std::vector<ComPtr<FakeSessionManager>>{speakers}));
  Events events;
  for (int round = 0; round < 3; ++round) {
    ASSERT_FALSE(watch.start(events.callback()));
    auto seen = events.take();
    ASSERT_EQ(seen.size(), 1u) << "round " << round;
    expect_event(seen[0], L"s1", 100, State::kActive);
    EXPECT_EQ(speakers->registered(), 1);
    watch.stop();
    EXPECT_EQ(speakers->registered(), 0);
  }
}

TEST(SessionWatch, NothingIsRegisteredFromInsideANotificationAndLaterSessionsAreWatched) {
  // The fakes count every call into the session API made from inside a notification they
  // deliver: the real audio service may deadlock on those.
  const int before = testing::calls_from_notifications();
  auto speakers = FakeSessionManager::make();
  speakers->add_existing(L"old", 100, AudioSessionStateActive);
  SessionWatch watch(
      {}, std::make_shared<FakeSessionManagers>(std::vector<ComPtr<FakeSessionManager>>{speakers}));
  Events events;
  ASSERT_FALSE(watch.start(events.callback()));
  ASSERT_EQ(events.take().size(), 1u);
  // Sessions created one after another, each announced while the one before may still be
  // registering on the worker; each ends differently.
  std::vector<ComPtr<FakeSessionControl>> created;
  for (uint32_t i = 0; i < 5; ++i) {
    created.push_back(
        speakers->create_session(L"new" + std::to_wstring(i), 200 + i, AudioSessionStateActive));
  }
  ASSERT_TRUE(events.wait_for(5));
  for (const auto &session : created) {
    EXPECT_EQ(session->registered(), 1);
  }
  created[0]->set_state(AudioSessionStateInactive);
  created[1]->set_state(AudioSessionStateExpired);
  created[2]->disconnect();
  ASSERT_TRUE(events.wait_for(8));
  auto seen = events.take();
  ASSERT_EQ(seen.size(), 8u);
  for (uint32_t i = 0; i < 5; ++i) {
    expect_event(seen[i], (L"new" + std::to_wstring(i)).c_str(), 200 + i, State::kActive);
  }
  expect_event(seen[5], L"new0", 200, State::kInactive);
  expect_event(seen[6], L"new1", 201, State::kExpired);
  expect_event(seen[7], L"new2", 202, State::kExpired);
  // The expired ones were let go of (from the worker), the others are still listened to.
  EXPECT_EQ(created[0]->registered(), 1);
  EXPECT_EQ(created[1]->registered(), 0);
  EXPECT_EQ(created[2]->registered(), 0);
  created[4]->set_state(AudioSessionStateInactive);
  ASSERT_TRUE(events.wait_for(1));
  expect_event(events.take().at(0), L"new4", 204, State::kInactive);
  watch.stop();
  for (const auto &session : created) {
    EXPECT_EQ(session->registered(), 0);
  }
  EXPECT_EQ(speakers->registered(), 0);
  EXPECT_EQ(testing::calls_from_notifications(), before)
      << "the session API was called from inside a notification";
}

TEST(SessionWatch, StoppingWithNewsStillQueuedReleasesIt) {
  auto speakers = FakeSessionManager::make();
  auto managers =
      std::make_shared<FakeSessionManagers>(std::vector<ComPtr<FakeSessionManager>>{speakers});
  const ULONG manager_refs = testing::references(speakers.Get());
  // What a session has with no watch about: this test's reference and its manager's.
  auto unwatched = FakeSessionManager::make();
  const ULONG session_refs =
      testing::references(unwatched->create_session(L"probe", 1, AudioSessionStateActive).Get());
  auto watch = std::make_unique<SessionWatch>(Logger{}, managers);
  // The callback holds the worker on the first session's report until the watch is being
  // stopped: the sessions announced meanwhile are still queued when it is.
  std::mutex mutex;
  std::condition_variable changed;
  bool reporting = false, stopping = false;
  size_t reports = 0;
  ASSERT_FALSE(watch->start([&](const SessionEvent &) {
    std::unique_lock<std::mutex> lock(mutex);
    ++reports;
    reporting = true;
    changed.notify_all();
    changed.wait_for(lock, std::chrono::seconds(10), [&] { return stopping; });
  }));
  managers->on_stop([&] {
    std::lock_guard<std::mutex> lock(mutex);
    stopping = true;
    changed.notify_all();
  });
  ComPtr<FakeSessionControl> first =
      speakers->create_session(L"first", 100, AudioSessionStateActive);
  {
    std::unique_lock<std::mutex> lock(mutex);
    ASSERT_TRUE(changed.wait_for(lock, std::chrono::seconds(10), [&] { return reporting; }));
  }
  ComPtr<FakeSessionControl> second =
      speakers->create_session(L"second", 200, AudioSessionStateActive);
  ComPtr<FakeSessionControl> third =
      speakers->create_session(L"third", 300, AudioSessionStateActive);
  first->set_state(AudioSessionStateInactive);  // its news queued too
  // Those, and the one queued for the worker.
  EXPECT_EQ(testing::references(second.Get()), session_refs + 1);
  EXPECT_EQ(testing::references(third.Get()), session_refs + 1);

  watch.reset();
  EXPECT_EQ(reports, 1u) << "news queued at the stop was delivered";
  EXPECT_EQ(testing::references(first.Get()), session_refs);
  EXPECT_EQ(testing::references(second.Get()), session_refs);
  EXPECT_EQ(testing::references(third.Get()), session_refs);
  EXPECT_EQ(first->registered(), 0);
  EXPECT_EQ(second->registered(), 0);
  EXPECT_EQ(third->registered(), 0);
  EXPECT_EQ(speakers->registered(), 0);
  EXPECT_EQ(testing::references(speakers.Get()), manager_refs);
}

TEST(SessionWatch, ItsNotificationsAreFreedOnceUnregistered) {
  auto speakers = FakeSessionManager::make();
  SessionWatch watch(
      {}, std::make_shared<FakeSessionManagers>(std::vector<ComPtr<FakeSessionManager>>{speakers}));
  Events events;
  ASSERT_FALSE(watch.start(events.callback()));
  ComPtr<IAudioSessionNotification> notifier = speakers->notification();
  ComPtr<FakeSessionControl> session =
      speakers->create_session(L"s1", 100, AudioSessionStateActive);
  ASSERT_TRUE(events.wait_for(1));
  ComPtr<IAudioSessionEvents> listener = session->listener();
  ASSERT_TRUE(notifier);
  ASSERT_TRUE(listener);
  watch.stop();
  // Only this test holds them now: the watch and the fakes let go of them when they were
  // unregistered, and the last Release() deletes them.
  EXPECT_EQ(testing::references(notifier.Get()), 1u);
  EXPECT_EQ(testing::references(listener.Get()), 1u);
}

// The backend following a process by name through the real SessionWatch glue, the sessions
// coming from the fakes as Windows would send them.
class SessionWatchBackend : public testing::BackendTest {};

TEST_F(SessionWatchBackend, FollowingThroughTheSessionWatch) {
  auto speakers = FakeSessionManager::make();
  {
    // The fixture's backend, rebuilt with a SessionWatch on fake devices.
    activator_ = std::make_shared<testing::FakeActivator>();
    WasapiBackendOptions options;
    options.activator = activator_;
    options.sessions = std::make_shared<SessionWatch>(
        Logger{},
        std::make_shared<FakeSessionManagers>(std::vector<ComPtr<FakeSessionManager>>{speakers}));
    options.query_version = [](WindowsVersion &v) {
      v = {10, 0, 19045};
      return true;
    };
    options.query_mix_rate = [](uint32_t &rate) {
      rate = 48000;
      return CaptureError{};
    };
    backend_->close();
    backend_.reset(new WasapiBackend({}, options));
  }
  const ChildCopy exe;
  ASSERT_FALSE(exe.path().empty());
  TargetSpec target;
  target.process_name = exe.stem();
  target.on_exit = OnTargetExit::kWait;
  testing::RecordingSink &sink = new_sink(8);
  ASSERT_FALSE(backend_->open(target));
  ASSERT_FALSE(backend_->start(testing::config_of(SampleFormat::kF32LE, 48000, 2), sink));
  ASSERT_TRUE(sink.wait_for(testing::RecordingSink::Kind::kIdle, 2));
  EXPECT_EQ(activator_->activations(), 0u);
  ChildProcess app;
  std::string why;
  ASSERT_TRUE(app.start(30000, why, exe.path())) << why;
  speakers->create_session(L"app", app.pid(), AudioSessionStateActive);
  ASSERT_TRUE(sink.wait_until([&](const std::vector<testing::RecordingSink::Call> &calls) {
    for (const auto &c : calls) {
      if (c.kind == testing::RecordingSink::Kind::kTargetState &&
          c.state == TargetState{TargetState::Phase::kCapturing, app.pid(), 1}) {
        return true;
      }
    }
    return false;
  }));
  EXPECT_EQ(activator_->requests().at(0).pid, app.pid());
  backend_->close();
  EXPECT_EQ(speakers->registered(), 0);
}

}  // namespace
}  // namespace wasapi
}  // namespace procaudio
