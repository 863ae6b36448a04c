// SPDX-License-Identifier: LGPL-2.1-or-later
#include "session_managers.h"

#include <mmdeviceapi.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "com_object.h"
#include "hresult.h"
#include "unique_handle.h"

using Microsoft::WRL::ComPtr;

namespace procaudio {
namespace wasapi {

struct EndpointSessionManagers::Impl {
  explicit Impl(Logger l) : log(std::move(l)) {}

  Logger log;
  ComPtr<IMMDeviceEnumerator> enumerator;       // start() to stop()
  ComPtr<IMMNotificationClient> notifications;  // registered with it
  Added added;
  std::thread worker;
  UniqueHandle news{CreateEventW(nullptr, FALSE, FALSE, nullptr)};  // auto-reset
  UniqueHandle stopping{CreateEventW(nullptr, TRUE, FALSE, nullptr)};

  std::mutex mutex;                  // guards the two below
  std::deque<std::wstring> pending;  // endpoints that may have become active
  std::set<std::wstring> watched;    // endpoints whose manager was handed out

  // The session manager of `device` if it is an active render endpoint not handed out yet.
  Manager manager_of(IMMDevice *device);
  void run();
};

namespace {

std::wstring id_of(IMMDevice *device) {
  LPWSTR raw = nullptr;
  if (FAILED(device->GetId(&raw)) || raw == nullptr) {
    return {};
  }
  std::wstring id = raw;
  CoTaskMemFree(raw);
  return id;
}

// Free-threaded: the audio service calls it on its own threads.
class EndpointNotifications final : public ComObject<IMMNotificationClient> {
 public:
  explicit EndpointNotifications(std::weak_ptr<EndpointSessionManagers::Impl> impl)
      : impl_(std::move(impl)) {}

  HRESULT STDMETHODCALLTYPE OnDeviceStateChanged(LPCWSTR id, DWORD state) override {
    if (state == DEVICE_STATE_ACTIVE) {
      queue(id);
    }
    return S_OK;
  }
  HRESULT STDMETHODCALLTYPE OnDeviceAdded(LPCWSTR id) override {
    queue(id);
    return S_OK;
  }
  HRESULT STDMETHODCALLTYPE OnDeviceRemoved(LPCWSTR) override { return S_OK; }
  HRESULT STDMETHODCALLTYPE OnDefaultDeviceChanged(EDataFlow, ERole, LPCWSTR) override {
    return S_OK;
  }
  HRESULT STDMETHODCALLTYPE OnPropertyValueChanged(LPCWSTR, const PROPERTYKEY) override {
    return S_OK;
  }

 private:
  // No waiting here: the id is queued for the worker.
  void queue(LPCWSTR id) {
    auto impl = impl_.lock();
    if (!impl || id == nullptr) {
      return;
    }
    {
      std::lock_guard<std::mutex> lock(impl->mutex);
      impl->pending.emplace_back(id);
    }
    SetEvent(impl->news.get());
  }

  std::weak_ptr<EndpointSessionManagers::Impl> impl_;
};

}  // namespace

SessionManagerSource::Manager EndpointSessionManagers::Impl::manager_of(IMMDevice *device) {
  DWORD state = 0;
  ComPtr<IMMEndpoint> endpoint;
  EDataFlow flow = eCapture;
  if (FAILED(device->GetState(&state)) || state != DEVICE_STATE_ACTIVE ||
      FAILED(device->QueryInterface(__uuidof(IMMEndpoint),
                                    reinterpret_cast<void **>(endpoint.GetAddressOf()))) ||
      FAILED(endpoint->GetDataFlow(&flow)) || flow != eRender) {
    return {};
  }
  const std::wstring id = id_of(device);
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (id.empty() || !watched.insert(id).second) {
      return {};
    }
  }
  Manager manager;
  const HRESULT hr = device->Activate(__uuidof(IAudioSessionManager2), CLSCTX_ALL, nullptr,
                                      reinterpret_cast<void **>(manager.GetAddressOf()));
  if (FAILED(hr)) {
    PROCAUDIO_DEBUG(log, "an output device's session manager: %s", format_hresult(hr).c_str());
    return {};
  }
  return manager;
}

void EndpointSessionManagers::Impl::run() {
  const HRESULT co = CoInitializeEx(nullptr, COINIT_MULTITHREADED);
  HANDLE handles[2] = {stopping.get(), news.get()};
  while (WaitForMultipleObjects(2, handles, FALSE, INFINITE) == WAIT_OBJECT_0 + 1) {
    std::deque<std::wstring> ids;
    {
      std::lock_guard<std::mutex> lock(mutex);
      ids.swap(pending);
    }
    for (const std::wstring &id : ids) {
      ComPtr<IMMDevice> device;
      if (FAILED(enumerator->GetDevice(id.c_str(), device.GetAddressOf()))) {
        continue;
      }
      if (Manager manager = manager_of(device.Get())) {
        PROCAUDIO_DEBUG(log, "an output device became active: watching its audio sessions");
        added(manager);
      }
    }
  }
  if (SUCCEEDED(co)) {
    CoUninitialize();
  }
}

EndpointSessionManagers::EndpointSessionManagers(Logger log)
    : impl_(std::make_shared<Impl>(std::move(log))) {}

EndpointSessionManagers::~EndpointSessionManagers() {
  stop();
}

CaptureError EndpointSessionManagers::start(std::vector<Manager> &now, Added added) {
  stop();
  Impl &s = *impl_;
  now.clear();
  HRESULT hr = CoCreateInstance(__uuidof(MMDeviceEnumerator), nullptr, CLSCTX_ALL,
                                IID_PPV_ARGS(s.enumerator.GetAddressOf()));
  if (FAILED(hr)) {
    return hresult_error(ErrorKind::kBackendUnavailable,
                         "The Windows audio endpoints cannot be listed.",
                         "CoCreateInstance(MMDeviceEnumerator)", hr);
  }
  // Registered before listing: an endpoint that becomes active in between is queued (and
  // handed out once: `watched`).
  s.added = std::move(added);
  s.notifications = adopt<IMMNotificationClient>(new EndpointNotifications(impl_));
  hr = s.enumerator->RegisterEndpointNotificationCallback(s.notifications.Get());
  if (FAILED(hr)) {
    PROCAUDIO_DEBUG(s.log, "output devices added later will not be watched: %s",
                    format_hresult(hr).c_str());
    s.notifications.Reset();
  }
  ComPtr<IMMDeviceCollection> devices;
  UINT count = 0;
  hr = s.enumerator->EnumAudioEndpoints(eRender, DEVICE_STATE_ACTIVE, devices.GetAddressOf());
  if (FAILED(hr) || FAILED(hr = devices->GetCount(&count))) {
    stop();
    return hresult_error(ErrorKind::kBackendUnavailable,
                         "The Windows audio output devices cannot be listed.",
                         "IMMDeviceEnumerator::EnumAudioEndpoints(eRender)", hr);
  }
  for (UINT i = 0; i < count; ++i) {
    ComPtr<IMMDevice> device;
    if (SUCCEEDED(devices->Item(i, device.GetAddressOf()))) {
      if (Manager manager = s.manager_of(device.Get())) {
        now.push_back(manager);
      }
    }
  }
  ResetEvent(s.stopping.get());
  s.worker = std::thread(&Impl::run, impl_.get());
  PROCAUDIO_DEBUG(s.log, "%u active output device(s)", count);
  return {};
}

void EndpointSessionManagers::stop() {
  Impl &s = *impl_;
  // Unregistered here, never from a notification (the documented deadlock).
  if (s.notifications) {
    s.enumerator->UnregisterEndpointNotificationCallback(s.notifications.Get());
    s.notifications.Reset();
  }
  if (s.worker.joinable()) {
    SetEvent(s.stopping.get());
    s.worker.join();
  }
  s.enumerator.Reset();
  s.added = nullptr;
  std::lock_guard<std::mutex> lock(s.mutex);
  s.pending.clear();
  s.watched.clear();
}

}  // namespace wasapi
}  // namespace procaudio
