// SPDX-License-Identifier: LGPL-2.1-or-later
// The applications that play audio, from their output streams: what the device providers
// list. A stream belongs to the process that owns it; that process is shown as the oldest of
// itself and its ancestors that has its executable name (the RootFinder's answer), so a
// browser's audio child or a player's forked decoder shows as the browser or the player, and
// capturing that root with include-tree takes every stream of the group. One Application per
// root.
//
// No GStreamer and no OS here: each platform's watch (PipeWire's registry, Windows' audio
// sessions) feeds it what it knows of each stream, with a RootFinder of its own, and turns
// what changes into devices; a test can feed it directly. Not thread-safe: its owner
// serialises the calls.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "capture_error.h"

namespace procaudio {
// One application, as a device shows it.
struct Application {
  uint32_t pid = 0;          // the root whose tree a capture takes
  std::string process_name;  // the root's name ("firefox", "paplay", "chrome.exe")
  std::string app_name;      // application.name its streams gave ("" when none did)
  std::string app_id;        // the sandbox's application id ("" when it runs in none)
  std::string display_name;  // app_name, else process_name
  uint32_t streams = 0;      // its audio output streams now
  bool playing = false;      // one of them runs now

  bool operator==(const Application &other) const;
  bool operator!=(const Application &other) const { return !(*this == other); }
};

// What a platform's watch of the applications tells whoever shows them (a device provider).
class AppEvents {
 public:
  virtual ~AppEvents() = default;
  virtual void on_app_added(const Application &app) = 0;
  virtual void on_app_changed(const Application &app) = 0;
  virtual void on_app_removed(const Application &app) = 0;
};

// A platform's live watch of the applications: it tells its AppEvents what changes between
// start() and stop(), those already playing before start() returns, and nothing after stop().
class AppWatcher {
 public:
  virtual ~AppWatcher() = default;
  virtual CaptureError start() = 0;
  virtual void stop() = 0;
};

// What the platform says of one output stream (a PipeWire node, a Windows audio session).
struct AppStream {
  uint32_t id = 0;       // unique among the streams fed to one AppList
  uint32_t pid = 0;      // whose stream it is (0: nobody's, never listed)
  bool running = false;  // it plays now (not paused, corked or stopped)
  std::string app_name;  // the name the stream gives its application ("" when none)
  std::string app_id;    // the sandbox's application id ("" when none)
};

// The root a stream's process plays for: its pid (0: the process is gone), executable name,
// and sandbox application id.
struct AppRoot {
  uint32_t pid = 0;
  std::string process_name;
  std::string app_id;
};
using RootFinder = std::function<AppRoot(uint32_t pid)>;

class AppList {
 public:
  struct Change {
    enum class Kind { kNone, kAdded, kChanged, kRemoved };
    Kind kind = Kind::kNone;
    Application app;  // as it is now (kRemoved: as it was)
  };

  // Streams of `self_pid` (the provider's own process) or of a group rooted there are never
  // listed.
  AppList(uint32_t self_pid, RootFinder finder);

  // A stream seen for the first time or again (its state changed). The root of a new stream
  // is found once, now: its process may be gone by the time it is removed.
  Change update(const AppStream &stream);
  // A stream is gone.
  Change remove(uint32_t stream_id);
  // Every application now, by pid.
  std::vector<Application> applications() const;
  void clear();

 private:
  struct Group {
    std::string process_name;
    std::string app_id;                     // the root's sandbox, when its streams say none
    std::map<uint32_t, AppStream> streams;  // by stream id
  };
  Application describe(uint32_t root, const Group &group) const;

  uint32_t self_pid_;
  RootFinder finder_;
  std::map<uint32_t, uint32_t> root_of_;  // stream id -> root pid, for the streams listed
  std::map<uint32_t, Group> groups_;      // root pid -> its streams
};

}  // namespace procaudio
