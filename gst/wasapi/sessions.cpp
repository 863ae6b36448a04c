// SPDX-License-Identifier: LGPL-2.1-or-later
#include "sessions.h"

#include <windows.h>
// (windows.h first)
#include <audioclient.h>
#include <audiopolicy.h>
#include <mmdeviceapi.h>
#include <wrl/client.h>

#include <map>
#include <mutex>
#include <vector>

#include "com_object.h"
#include "com_thread.h"
#include "hresult.h"
#include "session_managers.h"

using Microsoft::WRL::ComPtr;

namespace procaudio {
namespace wasapi {

namespace {

SessionEvent::State state_of(AudioSessionState state) {
  switch (state) {
    case AudioSessionStateActive:
      return SessionEvent::State::kActive;
    case AudioSessionStateInactive:
      return SessionEvent::State::kInactive;
    case AudioSessionStateExpired:
      break;
  }
  return SessionEvent::State::kExpired;
}

}  // namespace

// The audio service calls the notifications on its own threads, where Microsoft documents that
// they must not wait or call the session API (registering from OnSessionCreated can deadlock).
// They only queue what they learnt for `worker`; everything that registers, asks a session
// about itself or reports to the callback runs there, one thing at a time, in order: a
// session's state changes are delivered after the session itself.
struct SessionWatch::Impl : std::enable_shared_from_this<SessionWatch::Impl> {
  explicit Impl(Logger l) : log(std::move(l)) {}

  Logger log;
  std::shared_ptr<SessionManagerSource> source;  // set at construction
  MtaWorker worker;                              // start() to stop()

  // Serializes the callback and guards everything below.
  std::mutex mutex;
  Callback callback;
  bool running = false;
  std::vector<ComPtr<IAudioSessionManager2>> managers;
  std::vector<ComPtr<IAudioSessionNotification>> notifiers;  // one per manager
  struct Watched {
    ComPtr<IAudioSessionControl2> control;
    ComPtr<IAudioSessionEvents> events;  // registered with it; null if that was refused
    SessionEvent last;                   // what was reported of it last
  };
  std::map<std::wstring, Watched> sessions;

  void report(const SessionEvent &event) {
    std::lock_guard<std::mutex> lock(mutex);
    if (running && callback) {
      callback(event);
    }
  }

  // The worker's side of the notifications. A new session: its identity, its state now, and
  // its state changes from here on.
  void watch(IAudioSessionControl *control);
  // A watched session's new state: reported; an expired session is unregistered and forgotten.
  void deliver(const std::wstring &id, SessionEvent::State state);
  // A watched session's new display name: reported with the state it is in.
  void rename(const std::wstring &id, const std::wstring &name);
  // An output device's sessions: those there are, and new ones from its notifications.
  CaptureError watch_manager(const SessionManagerSource::Manager &manager);
};

namespace {

class SessionEvents final : public ComObject<IAudioSessionEvents> {
 public:
  SessionEvents(std::weak_ptr<SessionWatch::Impl> watch, std::wstring id)
      : watch_(std::move(watch)), id_(std::move(id)) {}

  HRESULT STDMETHODCALLTYPE OnStateChanged(AudioSessionState state) override {
    queue(state_of(state));
    return S_OK;
  }
  HRESULT STDMETHODCALLTYPE OnSessionDisconnected(AudioSessionDisconnectReason) override {
    queue(SessionEvent::State::kExpired);
    return S_OK;
  }
  HRESULT STDMETHODCALLTYPE OnDisplayNameChanged(LPCWSTR name, LPCGUID) override {
    if (auto watch = watch_.lock()) {
      SessionWatch::Impl *impl = watch.get();  // outlived by its worker, as in queue()
      const std::wstring id = id_, now = name != nullptr ? name : L"";
      impl->worker.post([impl, id, now] { impl->rename(id, now); });
    }
    return S_OK;
  }
  HRESULT STDMETHODCALLTYPE OnIconPathChanged(LPCWSTR, LPCGUID) override { return S_OK; }
  HRESULT STDMETHODCALLTYPE OnSimpleVolumeChanged(float, BOOL, LPCGUID) override { return S_OK; }
  HRESULT STDMETHODCALLTYPE OnChannelVolumeChanged(DWORD, float *, DWORD, LPCGUID) override {
    return S_OK;
  }
  HRESULT STDMETHODCALLTYPE OnGroupingParamChanged(LPCGUID, LPCGUID) override { return S_OK; }

 private:
  void queue(SessionEvent::State state) {
    if (auto watch = watch_.lock()) {
      // The worker is joined before Impl goes: the raw pointer outlives the queued work.
      SessionWatch::Impl *impl = watch.get();
      const std::wstring id = id_;
      impl->worker.post([impl, id, state] { impl->deliver(id, state); });
    }
  }

  std::weak_ptr<SessionWatch::Impl> watch_;
  const std::wstring id_;
};

class SessionNotifier final : public ComObject<IAudioSessionNotification> {
 public:
  explicit SessionNotifier(std::weak_ptr<SessionWatch::Impl> watch) : watch_(std::move(watch)) {}
  HRESULT STDMETHODCALLTYPE OnSessionCreated(IAudioSessionControl *control) override {
    auto watch = watch_.lock();
    if (watch && control != nullptr) {
      // A reference of the worker's own (the caller's ends with this call), released there.
      ComPtr<IAudioSessionControl> held(control);
      SessionWatch::Impl *impl = watch.get();
      impl->worker.post([impl, held] { impl->watch(held.Get()); });
    }
    return S_OK;
  }

 private:
  std::weak_ptr<SessionWatch::Impl> watch_;
};

// The name the session gives itself ("" when it gives none: most applications leave it to
// the mixer to name them after their executable). A refusal is no reason not to watch it.
std::wstring display_name_of(const Logger &log, IAudioSessionControl2 *control, uint32_t pid) {
  LPWSTR raw = nullptr;
  const HRESULT hr = control->GetDisplayName(&raw);
  std::wstring name;
  if (SUCCEEDED(hr) && raw != nullptr) {
    name = raw;
  }
  if (raw != nullptr) {
    CoTaskMemFree(raw);
  }
  if (FAILED(hr)) {
    // One line per session, at debug level: wine and the tests' fakes refuse it for each one.
    PROCAUDIO_DEBUG(log, "session of pid %u: no display name (%s)", pid,
                    format_hresult(hr).c_str());
  }
  return name;
}

}  // namespace

void SessionWatch::Impl::watch(IAudioSessionControl *control) {
  ComPtr<IAudioSessionControl2> control2;
  if (control == nullptr ||
      FAILED(control->QueryInterface(__uuidof(IAudioSessionControl2),
                                     reinterpret_cast<void **>(control2.GetAddressOf())))) {
    return;
  }
  LPWSTR raw_id = nullptr;
  if (FAILED(control2->GetSessionInstanceIdentifier(&raw_id)) || raw_id == nullptr) {
    return;
  }
  const std::wstring id = raw_id;
  CoTaskMemFree(raw_id);
  {
    // A session that starts while the devices are listed is both listed and announced: it
    // is watched (and registered with) once.
    std::lock_guard<std::mutex> lock(mutex);
    if (!running || sessions.count(id) != 0) {
      return;
    }
  }
  DWORD pid = 0;
  control2->GetProcessId(&pid);  // AUDCLNT_S_NO_SINGLE_PROCESS / the system session: 0
  SessionEvent seen;
  seen.id = id;
  seen.pid = static_cast<uint32_t>(pid);
  seen.system_sounds = control2->IsSystemSoundsSession() == S_OK;
  seen.display_name = display_name_of(log, control2.Get(), seen.pid);
  ComPtr<IAudioSessionEvents> events =
      adopt<IAudioSessionEvents>(new SessionEvents(weak_from_this(), id));
  const HRESULT hr = control2->RegisterAudioSessionNotification(events.Get());
  if (FAILED(hr)) {
    PROCAUDIO_DEBUG(log, "session of pid %lu: no state notifications (%s)",
                    static_cast<unsigned long>(pid), format_hresult(hr).c_str());
    events.Reset();
  }
  // Read after registering: a change from here on is queued behind this report, so the last
  // state reported is the session's.
  AudioSessionState state = AudioSessionStateExpired;
  control2->GetState(&state);
  seen.state = state_of(state);
  {
    std::lock_guard<std::mutex> lock(mutex);
    sessions[id] = {control2, events, seen};
  }
  report(seen);
}

void SessionWatch::Impl::deliver(const std::wstring &id, SessionEvent::State state) {
  Watched gone;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = sessions.find(id);
    if (!running || it == sessions.end()) {
      return;  // news of a session that expired already (disconnected, then expired)
    }
    it->second.last.state = state;
    const SessionEvent event = it->second.last;
    if (state == SessionEvent::State::kExpired) {
      gone = std::move(it->second);
      sessions.erase(it);
    }
    if (callback) {
      callback(event);
    }
  }
  // On the worker, not in the notification: unregistering there is the documented deadlock.
  if (gone.events) {
    gone.control->UnregisterAudioSessionNotification(gone.events.Get());
  }
}

void SessionWatch::Impl::rename(const std::wstring &id, const std::wstring &name) {
  std::lock_guard<std::mutex> lock(mutex);
  auto it = sessions.find(id);
  if (!running || it == sessions.end() || it->second.last.display_name == name) {
    return;
  }
  it->second.last.display_name = name;
  if (callback) {
    callback(it->second.last);
  }
}

SessionWatch::SessionWatch(Logger log, std::shared_ptr<SessionManagerSource> managers)
    : impl_(std::make_shared<Impl>(std::move(log))) {
  impl_->source =
      managers ? std::move(managers) : std::make_shared<EndpointSessionManagers>(impl_->log);
}

SessionWatch::~SessionWatch() {
  stop();
}

CaptureError SessionWatch::Impl::watch_manager(const SessionManagerSource::Manager &manager) {
  ComPtr<IAudioSessionNotification> notifier =
      adopt<IAudioSessionNotification>(new SessionNotifier(weak_from_this()));
  HRESULT hr = manager->RegisterSessionNotification(notifier.Get());
  if (FAILED(hr)) {
    return hresult_error(ErrorKind::kBackendUnavailable,
                         "Windows does not report the audio sessions of this machine's "
                         "applications, which following an application by its name "
                         "(on-target-exit=wait) needs.",
                         "IAudioSessionManager2::RegisterSessionNotification", hr);
  }
  {
    std::lock_guard<std::mutex> lock(mutex);
    managers.push_back(manager);
    notifiers.push_back(notifier);
  }
  // The sessions there are now. (The manager sends notifications only after a session
  // enumerator was asked for; one that starts meanwhile is listed and announced both, and
  // watched once.)
  ComPtr<IAudioSessionEnumerator> sessions;
  int n = 0;
  hr = manager->GetSessionEnumerator(sessions.GetAddressOf());
  if (FAILED(hr) || FAILED(hr = sessions->GetCount(&n))) {
    return hresult_error(ErrorKind::kBackendUnavailable,
                         "Windows does not list this machine's audio sessions, which following "
                         "an application by its name (on-target-exit=wait) needs.",
                         "IAudioSessionManager2::GetSessionEnumerator", hr);
  }
  for (int k = 0; k < n; ++k) {
    ComPtr<IAudioSessionControl> control;
    if (SUCCEEDED(sessions->GetSession(k, control.GetAddressOf()))) {
      watch(control.Get());
    }
  }
  return {};
}

CaptureError SessionWatch::start(Callback callback) {
  stop();
  Impl &s = *impl_;
  if (CaptureError error = s.worker.start()) {
    return error;
  }
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    s.callback = std::move(callback);
    s.running = true;
  }
  // On the worker, waited for: the sessions there are now are reported before start()
  // returns, and before any news the notifications queue meanwhile.
  std::weak_ptr<Impl> weak = impl_;
  const CaptureError error = s.worker.call([&s, weak] {
    std::vector<SessionManagerSource::Manager> now;
    // An output device that becomes active later is announced on the source's thread, and
    // watched on the worker too.
    CaptureError error = s.source->start(now, [weak](const SessionManagerSource::Manager &m) {
      if (auto impl = weak.lock()) {
        Impl *raw = impl.get();
        raw->worker.post([raw, m] {
          if (CaptureError e = raw->watch_manager(m)) {
            PROCAUDIO_DEBUG(raw->log, "a new output device's sessions: %s (%s)", e.message.c_str(),
                            e.detail.c_str());
          }
        });
      }
    });
    for (size_t i = 0; !error && i < now.size(); ++i) {
      error = s.watch_manager(now[i]);
    }
    if (!error) {
      PROCAUDIO_DEBUG(s.log, "watching the audio sessions of %u output device(s)",
                      static_cast<unsigned>(now.size()));
    }
    return error;
  });
  if (error) {
    stop();
  }
  return error;
}

void SessionWatch::stop() {
  Impl &s = *impl_;
  // First: what the notifications queue from here on is dropped (a source that stops may
  // still announce a device on its way out).
  s.worker.close();
  s.source->stop();  // no output device is added after this
  s.worker.stop();   // joined: nothing runs on it, and what was queued is released
  std::vector<ComPtr<IAudioSessionManager2>> managers;
  std::vector<ComPtr<IAudioSessionNotification>> notifiers;
  std::map<std::wstring, Impl::Watched> sessions;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    s.running = false;  // a notification still in flight reports nothing from here on
    s.callback = nullptr;
    managers.swap(s.managers);
    notifiers.swap(s.notifiers);
    sessions.swap(s.sessions);
  }
  if (managers.empty() && sessions.empty()) {
    return;
  }
  // Unregistered on an MTA thread, never from a notification (the documented deadlock).
  run_on_mta_thread([&] {
    for (size_t i = 0; i < managers.size(); ++i) {
      managers[i]->UnregisterSessionNotification(notifiers[i].Get());
    }
    for (auto &entry : sessions) {
      if (entry.second.events) {
        entry.second.control->UnregisterAudioSessionNotification(entry.second.events.Get());
      }
    }
    managers.clear();
    notifiers.clear();
    sessions.clear();
    return CaptureError{};
  });
}

}  // namespace wasapi
}  // namespace procaudio
