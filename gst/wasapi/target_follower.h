// SPDX-License-Identifier: LGPL-2.1-or-later
// What the WASAPI backend knows of its target between captures: the application's audio
// sessions (from an AudioSessionSource), and, when it follows the application by name
// (on-target-exit=wait), a thread that waits for the next process of that name while the
// stream goes on with idle ticks, and attaches to it when one of its sessions appears.
//
// Sink calls come from one thread at a time, never concurrently: the capture thread while a
// capture runs; this thread while waiting, from the moment it has joined the capture thread
// that handed over (after reporting the exit) until it starts the next capture. No GStreamer.
#pragma once

#include <windows.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/capture_backend.h"
#include "core/logger.h"
#include "sessions.h"
#include "unique_handle.h"

namespace procaudio {
namespace wasapi {

class TargetFollower {
 public:
  struct Hooks {
    // Opens and holds process `root` as the one to capture next. A snapshot taken at
    // `snapshot_time` (FILETIME units) listed it: a process under that pid created later is
    // another one (open_listed_process()). Called on the follower's thread. A failure does not
    // end the stream: that process exited, refused access, or its pid was reused meanwhile, so
    // the follower goes on waiting for the next process of the name.
    std::function<CaptureError(uint32_t root, uint64_t snapshot_time)> hold;
    // Starts capturing the process held (`root`, its tree) into the sink, `state` the first
    // thing the capture thread reports. Called on the follower's thread, after hold(). A
    // failure ends the stream with that error (the audio service refused the capture); the
    // hook lets go of the process itself then.
    std::function<CaptureError(uint32_t root, const TargetState &state)> attach;
    // Stops the capture whose thread handed over and forgets its process.
    std::function<void()> detach;
    // Hands `state` to the running capture's thread.
    std::function<void(const TargetState &)> report;
  };

  TargetFollower(Logger log, Hooks hooks);
  ~TargetFollower();
  TargetFollower(const TargetFollower &) = delete;
  TargetFollower &operator=(const TargetFollower &) = delete;

  // Watches the sessions of `source` for the tree of process `name`. `follows`: wait for and
  // attach to its next process when the target exits. An error if the source cannot run
  // (required only when following).
  CaptureError open(std::shared_ptr<AudioSessionSource> source, const std::string &name,
                    bool follows);
  void close();

  // Called by the backend before it (re)starts a capture, while no capture thread runs. A
  // capture thread that handed over after stop() had stopped this thread left its hand-over
  // pending: when following, the dead capture is detached here (the backend then starts
  // waiting, not that capture), as this thread would have done; else it is forgotten.
  void reset();

  // Between the backend's start() and stop(): `root` is the process captured now (0:
  // waiting), `streams` the count its capture reported first. While waiting, the sink gets
  // idle ticks every `tick_ms` from this thread. It does not forget a hand-over: the capture
  // started just before may already have reported its target's exit.
  void start(CaptureSink &sink, uint32_t root, uint32_t streams, uint32_t tick_ms);
  void stop();

  // From the capture thread, as its last call: the target exited. Reports it; when
  // following, the follower takes over the sink, else the stream ends (on_target_exit).
  void target_exited(CaptureSink &sink, uint32_t pid);

  // The target tree's sessions that have not expired.
  uint32_t streams_of(uint32_t root);

 private:
  void on_session(const SessionEvent &event);
  void run(CaptureSink *sink, uint32_t root, uint32_t streams, uint32_t tick_ms);
  // Holds and attaches the first process of the name that one of the live sessions plays
  // for. True once attached (`root`, `streams` set); false if none could be held (still
  // waiting) or the attach failed (`error` set: the stream ends).
  bool try_attach(uint32_t &root, uint32_t &streams, CaptureError &error);

  Logger log_;
  Hooks hooks_;
  std::shared_ptr<AudioSessionSource> source_;
  std::string name_;
  bool follows_ = false;

  std::mutex mutex_;                           // guards the fields below
  std::map<std::wstring, SessionEvent> live_;  // sessions that have not expired
  bool handed_over_ = false;                   // the capture thread reported the exit
  UniqueHandle news_;                          // auto-reset: sessions changed, hand-over
  UniqueHandle stop_;                          // manual-reset
  std::thread thread_;
};

}  // namespace wasapi
}  // namespace procaudio
