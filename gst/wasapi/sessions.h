// SPDX-License-Identifier: LGPL-2.1-or-later
// The machine's audio sessions, as they come and go: which process plays on which render
// endpoint, from Windows' own notifications (IAudioSessionManager2 on every active render
// endpoint, IAudioSessionNotification for new sessions, IAudioSessionEvents for each one's
// state). This is how the backend learns that the application it follows has started playing
// again, and how many streams the target has, without polling the process table. No GStreamer.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/capture_error.h"
#include "core/logger.h"

namespace procaudio {
namespace wasapi {

// One audio session's news.
struct SessionEvent {
  enum class State { kActive, kInactive, kExpired };
  std::wstring id;   // IAudioSessionControl2::GetSessionInstanceIdentifier: unique, stable
  uint32_t pid = 0;  // IAudioSessionControl2::GetProcessId; 0 for the system sounds session
  State state = State::kActive;  // kActive: playing; kInactive: stopped; kExpired: gone
  // What the session says of itself (the device provider shows it): its display name
  // (IAudioSessionControl::GetDisplayName, "" when it gives none; a change of it is reported
  // as the same state again with the new name) and whether it is the system sounds session
  // (IAudioSessionControl2::IsSystemSoundsSession == S_OK).
  std::wstring display_name;
  bool system_sounds = false;
};

// Where sessions come from: SessionWatch, or a test's script.
class AudioSessionSource {
 public:
  using Callback = std::function<void(const SessionEvent &)>;
  virtual ~AudioSessionSource() = default;
  // Reports every session there is now, then every change, on any thread (SessionWatch's
  // worker), never concurrently, until stop() returns. The callback must not block or
  // call back into the source. An error if the system cannot say (wine: E_NOTIMPL).
  virtual CaptureError start(Callback callback) = 0;
  virtual void stop() = 0;
};

class SessionManagerSource;

// The real one: the sessions of every active output device, those that become active later
// (a headset plugged in) included. `managers`: where the devices' session managers come from
// (null: EndpointSessionManagers, the system's; tests give COM fakes).
//
// The audio service's notifications only queue their news (the session control, AddRef'd, or
// its new state) for a worker thread of this watch's, in the MTA: Microsoft documents that they
// must not call back into the session API (registering from OnSessionCreated can deadlock).
// The worker registers for each session's events, asks it who plays, and calls the callback;
// start() reports the sessions there are now from it too, and waits for that. stop() joins it
// and releases what was still queued.
class SessionWatch final : public AudioSessionSource {
 public:
  explicit SessionWatch(Logger log = {}, std::shared_ptr<SessionManagerSource> managers = nullptr);
  ~SessionWatch() override;
  SessionWatch(const SessionWatch &) = delete;
  SessionWatch &operator=(const SessionWatch &) = delete;

  CaptureError start(Callback callback) override;
  void stop() override;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace wasapi
}  // namespace procaudio
