// IUnknown for the COM objects this code implements (the callbacks the audio service calls,
// and the tests' fakes): reference counted with an atomic, as they are called on any thread,
// and deleted by their last Release(). No GStreamer.
#pragma once

#include <windows.h>
// (windows.h first)
#include <unknwn.h>

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

}  // namespace wasapi
}  // namespace procaudio
