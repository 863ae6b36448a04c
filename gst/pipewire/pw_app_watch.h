// SPDX-License-Identifier: LGPL-2.1-or-later
// The applications that play audio, live, from the shared connection's registry: what the
// device provider shows. It attaches to the Connection as one more RegistryListener (the
// backends' cache, not a watch of its own), feeds each output stream node to an AppList and
// tells its Events what changed. Only registry events move it: a stream that appears,
// vanishes, starts or pauses (its node's state), a process that exits (its client and nodes
// go). Nothing polls.
//
// Threads: start() and stop() on the caller's thread; the events on the connection's thread
// loop, with its lock held, but those start() delivers (the applications already playing),
// which come on the caller's thread inside start(), before it returns. No event comes after
// stop() returns. No GStreamer.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/capture_error.h"
#include "core/logger.h"
#include "pw_app_list.h"

namespace procaudio {
namespace pipewire {

class Connection;

class AppWatch final : public AppWatcher {
 public:
  using Events = AppEvents;

  AppWatch(Logger log, Events *events);
  ~AppWatch() override;
  AppWatch(const AppWatch &) = delete;
  AppWatch &operator=(const AppWatch &) = delete;

  // Connects (or shares the connection), and tells `events` of every application playing now.
  CaptureError start() override;
  void stop() override;

  // The applications playing now, once (a probe): attaches, reads the cache, detaches.
  static CaptureError list(const Logger &log, std::vector<Application> *apps);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace pipewire
}  // namespace procaudio
