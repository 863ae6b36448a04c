// SPDX-License-Identifier: LGPL-2.1-or-later
#include "session_fakes.h"

#include <algorithm>
#include <atomic>
#include <thread>

using Microsoft::WRL::ComPtr;

namespace procaudio {
namespace wasapi {
namespace testing {

namespace {

std::atomic<int> g_calls_from_notifications{0};
// Set on the thread that delivers a notification while it runs the notified code.
thread_local bool t_in_notification = false;

// Where the session API is entered: counted when that is from inside a notification.
void entered_session_api() {
  if (t_in_notification) {
    ++g_calls_from_notifications;
  }
}

// The audio service calls notifications on its own threads: so do the fakes, one at a time,
// and wait, so that a test knows it was delivered when the call returns.
template <typename Fn>
void on_another_thread(Fn fn) {
  std::thread([&fn] {
    CoInitializeEx(nullptr, COINIT_MULTITHREADED);
    fn();
    CoUninitialize();
  }).join();
}

// A notification's delivery: on another thread, with the code it calls marked as running
// inside it.
template <typename Fn>
void notify(Fn fn) {
  on_another_thread([&fn] {
    t_in_notification = true;
    fn();
    t_in_notification = false;
  });
}

class FakeSessionEnumerator final : public ComObject<IAudioSessionEnumerator> {
 public:
  explicit FakeSessionEnumerator(std::vector<ComPtr<FakeSessionControl>> sessions)
      : sessions_(std::move(sessions)) {}
  HRESULT STDMETHODCALLTYPE GetCount(int *count) override {
    *count = static_cast<int>(sessions_.size());
    return S_OK;
  }
  HRESULT STDMETHODCALLTYPE GetSession(int index, IAudioSessionControl **session) override {
    if (index < 0 || static_cast<size_t>(index) >= sessions_.size()) {
      return E_INVALIDARG;
    }
    sessions_[static_cast<size_t>(index)].CopyTo(session);
    return S_OK;
  }

 private:
  ~FakeSessionEnumerator() = default;
  std::vector<ComPtr<FakeSessionControl>> sessions_;
};

}  // namespace

int calls_from_notifications() {
  return g_calls_from_notifications.load();
}

ULONG references(IUnknown *object) {
  object->AddRef();
  return object->Release();
}

// ---- FakeSessionManager

ComPtr<FakeSessionManager> FakeSessionManager::make() {
  return adopt(new FakeSessionManager());
}

ComPtr<FakeSessionControl> FakeSessionManager::add_existing(const std::wstring &id, uint32_t pid,
                                                            AudioSessionState state) {
  ComPtr<FakeSessionControl> session = adopt(new FakeSessionControl(id, pid, state));
  std::lock_guard<std::mutex> lock(mutex_);
  sessions_.push_back(session);
  return session;
}

ComPtr<FakeSessionControl> FakeSessionManager::create_session(const std::wstring &id, uint32_t pid,
                                                              AudioSessionState state) {
  return create_named_session(id, pid, state, {});
}

ComPtr<FakeSessionControl> FakeSessionManager::create_named_session(
    const std::wstring &id, uint32_t pid, AudioSessionState state,
    const std::wstring &display_name) {
  ComPtr<FakeSessionControl> session = adopt(new FakeSessionControl(id, pid, state));
  if (!display_name.empty()) {
    session->set_display_name(display_name);
  }
  std::vector<ComPtr<IAudioSessionNotification>> listeners;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    sessions_.push_back(session);
    listeners = notifications_;
  }
  notify([&] {
    for (const auto &n : listeners) {
      n->OnSessionCreated(session.Get());
    }
  });
  return session;
}

HRESULT FakeSessionManager::GetSessionEnumerator(IAudioSessionEnumerator **out) {
  entered_session_api();
  if (FAILED(enumerator_result)) {
    return enumerator_result;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  *out = new FakeSessionEnumerator(sessions_);
  return S_OK;
}

HRESULT FakeSessionManager::RegisterSessionNotification(IAudioSessionNotification *n) {
  entered_session_api();
  if (FAILED(register_result)) {
    return register_result;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  notifications_.emplace_back(n);
  return S_OK;
}

HRESULT FakeSessionManager::UnregisterSessionNotification(IAudioSessionNotification *n) {
  entered_session_api();
  std::lock_guard<std::mutex> lock(mutex_);
  ++unregistrations_;
  auto it = std::find_if(notifications_.begin(), notifications_.end(),
                         [n](const ComPtr<IAudioSessionNotification> &p) { return p.Get() == n; });
  if (it == notifications_.end()) {
    return E_INVALIDARG;
  }
  notifications_.erase(it);
  return S_OK;
}

int FakeSessionManager::registered() {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int>(notifications_.size());
}

ComPtr<IAudioSessionNotification> FakeSessionManager::notification() {
  std::lock_guard<std::mutex> lock(mutex_);
  return notifications_.empty() ? nullptr : notifications_.front();
}

int FakeSessionManager::unregistrations() {
  std::lock_guard<std::mutex> lock(mutex_);
  return unregistrations_;
}

// ---- FakeSessionControl

HRESULT FakeSessionControl::GetState(AudioSessionState *state) {
  std::lock_guard<std::mutex> lock(mutex_);
  *state = state_;
  return S_OK;
}

HRESULT FakeSessionControl::GetSessionInstanceIdentifier(LPWSTR *id) {
  const size_t bytes = (id_.size() + 1) * sizeof(wchar_t);
  *id = static_cast<LPWSTR>(CoTaskMemAlloc(bytes));
  if (*id == nullptr) {
    return E_OUTOFMEMORY;
  }
  std::copy(id_.c_str(), id_.c_str() + id_.size() + 1, *id);
  return S_OK;
}

void FakeSessionControl::set_display_name(const std::wstring &name) {
  std::lock_guard<std::mutex> lock(mutex_);
  has_display_name_ = true;
  display_name_ = name;
}

void FakeSessionControl::set_system_sounds(bool system_sounds) {
  std::lock_guard<std::mutex> lock(mutex_);
  system_sounds_ = system_sounds;
}

HRESULT FakeSessionControl::GetDisplayName(LPWSTR *name) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!has_display_name_) {
    return E_NOTIMPL;
  }
  const size_t bytes = (display_name_.size() + 1) * sizeof(wchar_t);
  *name = static_cast<LPWSTR>(CoTaskMemAlloc(bytes));
  if (*name == nullptr) {
    return E_OUTOFMEMORY;
  }
  std::copy(display_name_.c_str(), display_name_.c_str() + display_name_.size() + 1, *name);
  return S_OK;
}

HRESULT FakeSessionControl::IsSystemSoundsSession() {
  std::lock_guard<std::mutex> lock(mutex_);
  return system_sounds_ ? S_OK : S_FALSE;
}

HRESULT FakeSessionControl::GetProcessId(DWORD *pid) {
  *pid = pid_;
  return S_OK;
}

HRESULT FakeSessionControl::RegisterAudioSessionNotification(IAudioSessionEvents *e) {
  entered_session_api();
  std::lock_guard<std::mutex> lock(mutex_);
  events_.emplace_back(e);
  return S_OK;
}

HRESULT FakeSessionControl::UnregisterAudioSessionNotification(IAudioSessionEvents *e) {
  entered_session_api();
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = std::find_if(events_.begin(), events_.end(),
                         [e](const ComPtr<IAudioSessionEvents> &p) { return p.Get() == e; });
  if (it == events_.end()) {
    return E_INVALIDARG;
  }
  events_.erase(it);
  return S_OK;
}

void FakeSessionControl::set_state(AudioSessionState state) {
  std::vector<ComPtr<IAudioSessionEvents>> listeners;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    state_ = state;
    listeners = events_;
  }
  notify([&] {
    for (const auto &e : listeners) {
      e->OnStateChanged(state);
    }
  });
}

void FakeSessionControl::rename(const std::wstring &name) {
  std::vector<ComPtr<IAudioSessionEvents>> listeners;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    has_display_name_ = true;
    display_name_ = name;
    listeners = events_;
  }
  notify([&] {
    for (const auto &e : listeners) {
      e->OnDisplayNameChanged(name.c_str(), nullptr);
    }
  });
}

void FakeSessionControl::disconnect() {
  std::vector<ComPtr<IAudioSessionEvents>> listeners;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    listeners = events_;
  }
  notify([&] {
    for (const auto &e : listeners) {
      e->OnSessionDisconnected(DisconnectReasonDeviceRemoval);
    }
  });
}

ComPtr<IAudioSessionEvents> FakeSessionControl::listener() {
  std::lock_guard<std::mutex> lock(mutex_);
  return events_.empty() ? nullptr : events_.front();
}

int FakeSessionControl::registered() {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int>(events_.size());
}

// ---- FakeSessionManagers

CaptureError FakeSessionManagers::start(std::vector<Manager> &now, Added added) {
  std::lock_guard<std::mutex> lock(mutex_);
  now.assign(now_.begin(), now_.end());
  added_ = std::move(added);
  return {};
}

void FakeSessionManagers::stop() {
  std::function<void()> hook;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    added_ = nullptr;
    hook = on_stop_;
  }
  if (hook) {
    hook();
  }
}

void FakeSessionManagers::on_stop(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(mutex_);
  on_stop_ = std::move(hook);
}

void FakeSessionManagers::add(const ComPtr<FakeSessionManager> &manager) {
  Added added;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    added = added_;
  }
  if (added) {
    on_another_thread([&] { added(manager); });
  }
}

bool FakeSessionManagers::running() {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<bool>(added_);
}

}  // namespace testing
}  // namespace wasapi
}  // namespace procaudio
