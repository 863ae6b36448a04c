// SPDX-License-Identifier: LGPL-2.1-or-later
// COM fakes of Windows' audio-session manager, for SessionWatch under wine (whose own answers
// RegisterSessionNotification with E_NOTIMPL): IAudioSessionManager2 per output device, with
// IAudioSessionControl2 sessions and an enumerator, calling the notifications SessionWatch
// registered as the audio service would, on a thread of their own. FakeSessionManagers hands
// them to SessionWatch in place of the system's output devices, and adds devices later.
//
// The real audio service may deadlock when a notification it delivers calls back into the
// session API (Microsoft documents it for registering from OnSessionCreated): the fakes count
// such calls (calls_from_notifications()) so that a test can say there were none.
#pragma once

#include <windows.h>
// (windows.h first)
#include <audiopolicy.h>
#include <wrl/client.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "wasapi/com_object.h"
#include "wasapi/session_managers.h"

namespace procaudio {
namespace wasapi {
namespace testing {

class FakeSessionControl;

// Calls into the fakes' session API (RegisterSessionNotification and its kin, the enumerator,
// RegisterAudioSessionNotification and its kin) made from inside a notification the fakes were
// delivering (OnSessionCreated, OnStateChanged, OnSessionDisconnected), since the program began.
int calls_from_notifications();

// `object`'s reference count now.
ULONG references(IUnknown *object);

// One output device's session manager.
class FakeSessionManager final : public ComObject<IAudioSessionManager2, IAudioSessionManager> {
 public:
  static Microsoft::WRL::ComPtr<FakeSessionManager> make();

  // A session of process `pid` appears (and, if someone listens, is announced on another
  // thread, waited for).
  Microsoft::WRL::ComPtr<FakeSessionControl> create_session(const std::wstring &id, uint32_t pid,
                                                            AudioSessionState state);
  // Listed at the start (GetSessionEnumerator) without an announcement.
  Microsoft::WRL::ComPtr<FakeSessionControl> add_existing(const std::wstring &id, uint32_t pid,
                                                          AudioSessionState state);
  // A session of `pid` that says `display_name` of itself appears, announced as
  // create_session()'s are.
  Microsoft::WRL::ComPtr<FakeSessionControl> create_named_session(const std::wstring &id,
                                                                  uint32_t pid,
                                                                  AudioSessionState state,
                                                                  const std::wstring &display_name);

  HRESULT register_result = S_OK;    // what RegisterSessionNotification answers
  HRESULT enumerator_result = S_OK;  // what GetSessionEnumerator answers
  int registered();                  // notifications registered now
  int unregistrations();             // UnregisterSessionNotification calls
  // The notification registered first (null if none is).
  Microsoft::WRL::ComPtr<IAudioSessionNotification> notification();

  // IAudioSessionManager
  HRESULT STDMETHODCALLTYPE GetAudioSessionControl(LPCGUID, DWORD,
                                                   IAudioSessionControl **) override {
    return E_NOTIMPL;
  }
  HRESULT STDMETHODCALLTYPE GetSimpleAudioVolume(LPCGUID, DWORD, ISimpleAudioVolume **) override {
    return E_NOTIMPL;
  }
  // IAudioSessionManager2
  HRESULT STDMETHODCALLTYPE GetSessionEnumerator(IAudioSessionEnumerator **out) override;
  HRESULT STDMETHODCALLTYPE RegisterSessionNotification(IAudioSessionNotification *n) override;
  HRESULT STDMETHODCALLTYPE UnregisterSessionNotification(IAudioSessionNotification *n) override;
  HRESULT STDMETHODCALLTYPE RegisterDuckNotification(LPCWSTR,
                                                     IAudioVolumeDuckNotification *) override {
    return E_NOTIMPL;
  }
  HRESULT STDMETHODCALLTYPE UnregisterDuckNotification(IAudioVolumeDuckNotification *) override {
    return E_NOTIMPL;
  }

 private:
  FakeSessionManager() = default;
  ~FakeSessionManager() = default;

  std::mutex mutex_;
  std::vector<Microsoft::WRL::ComPtr<FakeSessionControl>> sessions_;
  std::vector<Microsoft::WRL::ComPtr<IAudioSessionNotification>> notifications_;
  int unregistrations_ = 0;
};

// One session.
class FakeSessionControl final : public ComObject<IAudioSessionControl2, IAudioSessionControl> {
 public:
  FakeSessionControl(std::wstring id, uint32_t pid, AudioSessionState state)
      : id_(std::move(id)), pid_(pid), state_(state) {}

  // What it says of itself (set before it is watched): GetDisplayName's answer (E_NOTIMPL,
  // as wine's, until one is set) and IsSystemSoundsSession's.
  void set_display_name(const std::wstring &name);
  void set_system_sounds(bool system_sounds);
  // Its state changes (announced on another thread, waited for).
  void set_state(AudioSessionState state);
  // Its display name changes (OnDisplayNameChanged, announced on another thread, waited for).
  void rename(const std::wstring &name);
  // The device went away or the session was ended (OnSessionDisconnected).
  void disconnect();
  int registered();  // IAudioSessionEvents registered now
  // The IAudioSessionEvents registered first (null if none is).
  Microsoft::WRL::ComPtr<IAudioSessionEvents> listener();

  // IAudioSessionControl
  HRESULT STDMETHODCALLTYPE GetState(AudioSessionState *state) override;
  HRESULT STDMETHODCALLTYPE GetDisplayName(LPWSTR *name) override;
  HRESULT STDMETHODCALLTYPE SetDisplayName(LPCWSTR, LPCGUID) override { return E_NOTIMPL; }
  HRESULT STDMETHODCALLTYPE GetIconPath(LPWSTR *) override { return E_NOTIMPL; }
  HRESULT STDMETHODCALLTYPE SetIconPath(LPCWSTR, LPCGUID) override { return E_NOTIMPL; }
  HRESULT STDMETHODCALLTYPE GetGroupingParam(GUID *) override { return E_NOTIMPL; }
  HRESULT STDMETHODCALLTYPE SetGroupingParam(LPCGUID, LPCGUID) override { return E_NOTIMPL; }
  HRESULT STDMETHODCALLTYPE RegisterAudioSessionNotification(IAudioSessionEvents *e) override;
  HRESULT STDMETHODCALLTYPE UnregisterAudioSessionNotification(IAudioSessionEvents *e) override;
  // IAudioSessionControl2
  HRESULT STDMETHODCALLTYPE GetSessionIdentifier(LPWSTR *) override { return E_NOTIMPL; }
  HRESULT STDMETHODCALLTYPE GetSessionInstanceIdentifier(LPWSTR *id) override;
  HRESULT STDMETHODCALLTYPE GetProcessId(DWORD *pid) override;
  HRESULT STDMETHODCALLTYPE IsSystemSoundsSession() override;
  HRESULT STDMETHODCALLTYPE SetDuckingPreference(BOOL) override { return E_NOTIMPL; }

 private:
  ~FakeSessionControl() = default;

  const std::wstring id_;
  const uint32_t pid_;
  std::mutex mutex_;
  AudioSessionState state_;
  bool has_display_name_ = false;
  std::wstring display_name_;
  bool system_sounds_ = false;
  std::vector<Microsoft::WRL::ComPtr<IAudioSessionEvents>> events_;
};

// The output devices SessionWatch watches: some at the start, more added later.
class FakeSessionManagers final : public SessionManagerSource {
 public:
  explicit FakeSessionManagers(std::vector<Microsoft::WRL::ComPtr<FakeSessionManager>> now)
      : now_(std::move(now)) {}

  CaptureError start(std::vector<Manager> &now, Added added) override;
  void stop() override;

  // A device becomes active: handed to the watch (on another thread, waited for).
  void add(const Microsoft::WRL::ComPtr<FakeSessionManager> &manager);
  bool running();
  // Called by the next stop()s, from the thread stopping the watch: a test sees there that the
  // watch is being stopped.
  void on_stop(std::function<void()> hook);

 private:
  std::mutex mutex_;
  std::vector<Microsoft::WRL::ComPtr<FakeSessionManager>> now_;
  Added added_;
  std::function<void()> on_stop_;
};

}  // namespace testing
}  // namespace wasapi
}  // namespace procaudio
