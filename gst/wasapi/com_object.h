// SPDX-License-Identifier: LGPL-2.1-or-later
// IUnknown for the COM objects this code implements (the callbacks the audio service calls,
// and the tests' fakes): reference counted with an atomic, as they are called on any thread,
// and deleted by their last Release(). No GStreamer.
#pragma once

#include <windows.h>
// (windows.h first)
#include <unknwn.h>
#include <wrl/client.h>

#include <atomic>

namespace procaudio {
namespace wasapi {

// `Interface` is the one implemented; `Also...` are interfaces it derives from
// (IAudioSessionControl for IAudioSessionControl2) that QueryInterface answers too.
template <typename Interface, typename... Also>
class ComObject : public Interface {
 public:
  HRESULT STDMETHODCALLTYPE QueryInterface(REFIID riid, void **object) override {
    if (object == nullptr) {
      return E_POINTER;
    }
    if (riid == __uuidof(IUnknown) || riid == __uuidof(Interface) ||
        ((riid == __uuidof(Also)) || ...)) {
      *object = static_cast<Interface *>(this);
      this->AddRef();
      return S_OK;
    }
    *object = nullptr;
    return E_NOINTERFACE;
  }
  ULONG STDMETHODCALLTYPE AddRef() override { return ++refs_; }
  ULONG STDMETHODCALLTYPE Release() override {
    const ULONG refs = --refs_;
    if (refs == 0) {
      delete this;
    }
    return refs;
  }

 protected:
  virtual ~ComObject() = default;

 private:
  std::atomic<ULONG> refs_{1};
};

// A ComPtr that takes over `fresh`, a new object's one reference, without adding one. Not
// ComPtr::Attach: mingw-w64's adds a reference where the Windows SDK's does not, and every
// object made so would never be deleted (nor what it holds, an audio client say).
template <typename T>
Microsoft::WRL::ComPtr<T> adopt(T *fresh) {
  Microsoft::WRL::ComPtr<T> owner;
  *owner.GetAddressOf() = fresh;
  return owner;
}

}  // namespace wasapi
}  // namespace procaudio
