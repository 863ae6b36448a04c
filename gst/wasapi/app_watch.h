// SPDX-License-Identifier: LGPL-2.1-or-later
// The applications that play audio on this machine, live, from its audio sessions: what
// wasapiprocdeviceprovider shows. A SessionWatch (every active render endpoint's
// IAudioSessionManager2, IAudioSessionNotification for new sessions, IAudioSessionEvents for
// each one's state) feeds each session to core's AppList, which groups them by the process
// they play for; the Events hear what changed. Only the audio service's notifications move
// it: a session that appears, starts, stops, renames itself, expires or is disconnected.
// Nothing polls.
//
// Sessions never listed: the system sounds session, one of no single process (pid 0), and
// this process's own (AppList drops a group rooted at this process too).
//
// Threads: start() and stop() on the caller's thread; the events on the SessionWatch's worker
// thread, one at a time, those start() delivers (the sessions there are) included, before
// start() returns. No event comes after stop() returns, and none may call back into the watch.
// No GStreamer.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/app_list.h"
#include "core/capture_error.h"
#include "core/logger.h"
#include "sessions.h"

namespace procaudio {
namespace wasapi {

class SessionManagerSource;

// The real RootFinder: find_root_process() on a fresh process snapshot.
AppRoot find_app_root(uint32_t pid);

// "chrome.exe" -> "chrome" (any case of ".exe"); other names unchanged.
std::string without_exe(const std::string &name);

class AppWatch final : public AppWatcher {
 public:
  using Events = AppEvents;

  // `managers`: the session managers to watch (null: every active render endpoint's, the
  // system's; tests give COM fakes). `finder`: null for find_app_root.
  AppWatch(Logger log, Events *events, std::shared_ptr<SessionManagerSource> managers = nullptr,
           RootFinder finder = nullptr);
  ~AppWatch() override;
  AppWatch(const AppWatch &) = delete;
  AppWatch &operator=(const AppWatch &) = delete;

  // Watches the sessions, and tells `events` of every application playing now. An error
  // (kBackendUnavailable, the failed call and its HRESULT in the detail) if Windows does not
  // report the sessions (wine 8: E_NOTIMPL); nothing is watched then.
  CaptureError start() override;
  void stop() override;

  // The applications playing now, as start() would tell them.
  std::vector<Application> applications();

  // The applications playing now, once (a probe): watches, reads, stops.
  static CaptureError list(const Logger &log, std::shared_ptr<SessionManagerSource> managers,
                           std::vector<Application> *apps);

 private:
  void on_session(const SessionEvent &event);
  void tell(const AppList::Change &change);

  Logger log_;
  Events *events_;  // null: only the list is kept (a probe)
  SessionWatch sessions_;
  std::mutex mutex_;  // guards the two below (the worker writes, applications() reads)
  AppList apps_;
  std::map<std::wstring, uint32_t> stream_ids_;  // session instance id -> AppList stream id
  uint32_t next_stream_id_ = 1;
};

}  // namespace wasapi
}  // namespace procaudio
