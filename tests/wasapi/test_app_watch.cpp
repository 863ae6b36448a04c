// SPDX-License-Identifier: LGPL-2.1-or-later
// AppWatch, the applications wasapiprocdeviceprovider lists, against COM fakes of the session
// managers (SessionWatch's real glue in between) and real child processes, whose process tree
// the grouping reads: two processes are two applications with their names and state; a
// session stopping, a second session of one process, a session created later, one renaming
// itself, one expiring or disconnected each change what is listed; a child's session is its
// parent's of the same executable; the system sounds session, pid 0 and this process are never
// listed; and 200 starts and stops give every COM reference back.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "session_fakes.h"
#include "test_support.h"
#include "wasapi/app_watch.h"
#include "wasapi/process_util.h"
#include "wasapi/win_string.h"

namespace procaudio {
namespace wasapi {
namespace {

using Microsoft::WRL::ComPtr;
using testing::ChildCopy;
using testing::ChildProcess;
using testing::FakeSessionControl;
using testing::FakeSessionManager;
using testing::FakeSessionManagers;

// What the watch told, in order; waited for (bounded), as it tells from its worker.
class Told final : public AppWatch::Events {
 public:
  enum class Kind { kAdded, kChanged, kRemoved };
  struct Event {
    Kind kind;
    Application app;
  };

  void on_app_added(const Application &app) override { record({Kind::kAdded, app}); }
  void on_app_changed(const Application &app) override { record({Kind::kChanged, app}); }
  void on_app_removed(const Application &app) override { record({Kind::kRemoved, app}); }

  // Waits (bounded) until `n` events were told and not taken yet; false on timeout.
  bool wait_for(size_t n) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(10), [&] { return events_.size() >= n; });
  }
  std::vector<Event> take() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<Event> out;
    out.swap(events_);
    return out;
  }

 private:
  void record(Event event) {
    std::lock_guard<std::mutex> lock(mutex_);
    events_.push_back(std::move(event));
    changed_.notify_all();
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Event> events_;
};

std::shared_ptr<FakeSessionManagers> managers_of(const ComPtr<FakeSessionManager> &manager) {
  return std::make_shared<FakeSessionManagers>(std::vector<ComPtr<FakeSessionManager>>{manager});
}

// The child `parent` started (wasapi-test-child's <program> argument, `exe`), waited for
// (bounded). By name: wine may give a console program a conhost.exe child too.
uint32_t child_of(const ChildProcess &parent, const ChildCopy &exe) {
  for (int attempt = 0; attempt < 200; ++attempt) {
    std::vector<ProcessEntry> processes;
    // A snapshot taken while the child is being made can fail under wine (seen once): it
    // lists nothing, and the next attempt takes another.
    list_processes(processes);
    for (const ProcessEntry &p : processes) {
      if (p.parent_pid == parent.pid() && p.pid != parent.pid() &&
          process_name_matches(p.exe, to_utf16(exe.stem()))) {
        return p.pid;
      }
    }
    WaitForSingleObject(parent.handle(), 50);  // bounded: it starts its own child now
  }
  return 0;
}

TEST(AppWatch, TwoProcessesAreTwoApplicationsWithTheirNamesAndWhetherTheyPlay) {
  const ChildCopy exe_a, exe_b;
  ASSERT_FALSE(exe_a.path().empty());
  ASSERT_FALSE(exe_b.path().empty());
  ChildProcess a, b;
  std::string why;
  ASSERT_TRUE(a.start(30000, why, exe_a.path())) << why;
  ASSERT_TRUE(b.start(30000, why, exe_b.path())) << why;
  auto speakers = FakeSessionManager::make();
  speakers->add_existing(L"a", a.pid(), AudioSessionStateActive)->set_display_name(L"Tone A");
  speakers->add_existing(L"b", b.pid(), AudioSessionStateInactive);
  // Never listed: the system sounds session (whoever it says plays it), no single process,
  // this process, and a name that is a resource reference, which names nobody.
  speakers->add_existing(L"system", a.pid(), AudioSessionStateActive)->set_system_sounds(true);
  speakers->add_existing(L"nobody", 0, AudioSessionStateActive);
  speakers->add_existing(L"self", GetCurrentProcessId(), AudioSessionStateActive);
  Told told;
  AppWatch watch({}, &told, managers_of(speakers));
  ASSERT_FALSE(watch.start());
  auto now = told.take();  // told before start() returned
  ASSERT_EQ(now.size(), 2u);
  const Application *app_a = nullptr, *app_b = nullptr;
  for (const auto &e : now) {
    EXPECT_EQ(e.kind, Told::Kind::kAdded);
    (e.app.pid == a.pid() ? app_a : app_b) = &e.app;
  }
  ASSERT_NE(app_a, nullptr);
  ASSERT_NE(app_b, nullptr);
  EXPECT_EQ(app_a->process_name, exe_a.stem() + ".exe");
  EXPECT_EQ(app_a->app_name, "Tone A");
  EXPECT_EQ(app_a->display_name, "Tone A");
  EXPECT_TRUE(app_a->playing);
  EXPECT_EQ(app_a->streams, 1u) << "the system sounds session was counted";
  EXPECT_EQ(app_b->pid, b.pid());
  EXPECT_EQ(app_b->process_name, exe_b.stem() + ".exe");
  EXPECT_EQ(app_b->app_name, "");
  EXPECT_EQ(app_b->display_name, exe_b.stem()) << "the executable's name, without .exe";
  EXPECT_FALSE(app_b->playing);
  EXPECT_EQ(app_b->streams, 1u);
  EXPECT_EQ(watch.applications().size(), 2u);
  watch.stop();
  EXPECT_EQ(speakers->registered(), 0);
  EXPECT_TRUE(watch.applications().empty());

  // A probe lists the same, once.
  std::vector<Application> listed;
  ASSERT_FALSE(AppWatch::list({}, managers_of(speakers), &listed));
  EXPECT_EQ(listed.size(), 2u);
  EXPECT_EQ(speakers->registered(), 0);
}

TEST(AppWatch, SessionsStartingStoppingAndEndingChangeWhatIsListed) {
  const ChildCopy exe_a, exe_b;
  ChildProcess a, b;
  std::string why;
  ASSERT_TRUE(a.start(30000, why, exe_a.path())) << why;
  ASSERT_TRUE(b.start(30000, why, exe_b.path())) << why;
  auto speakers = FakeSessionManager::make();
  ComPtr<FakeSessionControl> a1 = speakers->add_existing(L"a1", a.pid(), AudioSessionStateActive);
  Told told;
  AppWatch watch({}, &told, managers_of(speakers));
  ASSERT_FALSE(watch.start());
  ASSERT_EQ(told.take().size(), 1u);

  a1->set_state(AudioSessionStateInactive);  // paused
  ASSERT_TRUE(told.wait_for(1));
  auto e = told.take();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].kind, Told::Kind::kChanged);
  EXPECT_EQ(e[0].app.pid, a.pid());
  EXPECT_FALSE(e[0].app.playing);

  // A second session of the same process: one application, two streams, playing again.
  ComPtr<FakeSessionControl> a2 = speakers->create_session(L"a2", a.pid(), AudioSessionStateActive);
  ASSERT_TRUE(told.wait_for(1));
  e = told.take();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].kind, Told::Kind::kChanged);
  EXPECT_EQ(e[0].app.streams, 2u);
  EXPECT_TRUE(e[0].app.playing);

  // Another process starts playing later: added.
  ComPtr<FakeSessionControl> b1 =
      speakers->create_named_session(L"b1", b.pid(), AudioSessionStateActive, L"Player B");
  ASSERT_TRUE(told.wait_for(1));
  e = told.take();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].kind, Told::Kind::kAdded);
  EXPECT_EQ(e[0].app.pid, b.pid());
  EXPECT_EQ(e[0].app.display_name, "Player B");

  // It renames itself: changed, with the new name.
  b1->rename(L"Player B (live)");
  ASSERT_TRUE(told.wait_for(1));
  e = told.take();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].kind, Told::Kind::kChanged);
  EXPECT_EQ(e[0].app.display_name, "Player B (live)");
  EXPECT_TRUE(e[0].app.playing);

  // Its device goes away (disconnected): removed.
  b1->disconnect();
  ASSERT_TRUE(told.wait_for(1));
  e = told.take();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].kind, Told::Kind::kRemoved);
  EXPECT_EQ(e[0].app.pid, b.pid());

  // The first process's sessions expire one after the other: one stream, then none.
  a2->set_state(AudioSessionStateExpired);
  a1->set_state(AudioSessionStateExpired);
  ASSERT_TRUE(told.wait_for(2));
  e = told.take();
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].kind, Told::Kind::kChanged);
  EXPECT_EQ(e[0].app.streams, 1u);
  EXPECT_FALSE(e[0].app.playing);
  EXPECT_EQ(e[1].kind, Told::Kind::kRemoved);
  EXPECT_EQ(e[1].app.pid, a.pid());
  EXPECT_TRUE(watch.applications().empty());
  watch.stop();
}

TEST(AppWatch, AChildsSessionIsItsParentsOfTheSameExecutable) {
  // A browser's audio child shows as the browser: the child is the same program, started by
  // it; capturing the parent's tree takes the child's audio.
  const ChildCopy exe;
  ASSERT_FALSE(exe.path().empty());
  ChildProcess parent;
  std::string why;
  ASSERT_TRUE(parent.start(30000, why, exe.path(), exe.path())) << why;
  const uint32_t child = child_of(parent, exe);
  ASSERT_NE(child, 0u) << "the child's child never started";
  auto speakers = FakeSessionManager::make();
  speakers->add_existing(L"renderer", child, AudioSessionStateActive);
  Told told;
  AppWatch watch({}, &told, managers_of(speakers));
  ASSERT_FALSE(watch.start());
  auto e = told.take();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].app.pid, parent.pid());
  EXPECT_EQ(e[0].app.process_name, exe.stem() + ".exe");
  // The parent's own session joins the group.
  speakers->create_session(L"ui", parent.pid(), AudioSessionStateInactive);
  ASSERT_TRUE(told.wait_for(1));
  e = told.take();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].kind, Told::Kind::kChanged);
  EXPECT_EQ(e[0].app.pid, parent.pid());
  EXPECT_EQ(e[0].app.streams, 2u);
  EXPECT_TRUE(e[0].app.playing);
  watch.stop();
}

TEST(AppWatch, AProcessThatIsGoneIsNotListed) {
  auto speakers = FakeSessionManager::make();
  speakers->add_existing(L"ghost", testing::unused_pid(), AudioSessionStateActive);
  Told told;
  AppWatch watch({}, &told, managers_of(speakers));
  ASSERT_FALSE(watch.start());
  EXPECT_TRUE(told.take().empty());
  EXPECT_TRUE(watch.applications().empty());
}

TEST(AppWatch, TwoHundredStartsAndStopsGiveEveryReferenceBack) {
  const ChildCopy exe;
  ChildProcess a;
  std::string why;
  ASSERT_TRUE(a.start(60000, why, exe.path())) << why;
  auto speakers = FakeSessionManager::make();
  ComPtr<FakeSessionControl> session =
      speakers->add_existing(L"a", a.pid(), AudioSessionStateActive);
  auto managers = managers_of(speakers);
  const ULONG manager_refs = testing::references(speakers.Get());
  const ULONG session_refs = testing::references(session.Get());
  Told told;
  AppWatch watch({}, &told, managers);
  for (int round = 0; round < 200; ++round) {
    ASSERT_FALSE(watch.start()) << "round " << round;
    ASSERT_EQ(told.take().size(), 1u) << "round " << round;
    watch.stop();
  }
  EXPECT_EQ(testing::references(speakers.Get()), manager_refs);
  EXPECT_EQ(testing::references(session.Get()), session_refs);
  EXPECT_EQ(speakers->registered(), 0);
  EXPECT_EQ(session->registered(), 0);
}

TEST(AppWatch, ARefusedRegistrationListsNothingAndSaysWhy) {
  auto refusing = FakeSessionManager::make();
  refusing->register_result = E_NOTIMPL;  // what wine answers
  Told told;
  AppWatch watch({}, &told, managers_of(refusing));
  const CaptureError error = watch.start();
  EXPECT_EQ(error.kind, ErrorKind::kBackendUnavailable);
  EXPECT_NE(error.message.find("no application playing audio can be listed"), std::string::npos)
      << error.message;
  EXPECT_NE(error.detail.find("RegisterSessionNotification"), std::string::npos) << error.detail;
  EXPECT_NE(error.detail.find("E_NOTIMPL"), std::string::npos) << error.detail;
  EXPECT_EQ(refusing->registered(), 0);
  std::vector<Application> listed{Application{}};
  EXPECT_TRUE(AppWatch::list({}, managers_of(refusing), &listed));
  EXPECT_TRUE(listed.empty());
}

TEST(AppWatch, WithoutExe) {
  EXPECT_EQ(without_exe("chrome.exe"), "chrome");
  EXPECT_EQ(without_exe("Game.EXE"), "Game");
  EXPECT_EQ(without_exe("paplay"), "paplay");
  EXPECT_EQ(without_exe(".exe"), ".exe");
}

}  // namespace
}  // namespace wasapi
}  // namespace procaudio
