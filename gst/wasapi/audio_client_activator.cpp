// SPDX-License-Identifier: LGPL-2.1-or-later
#include "audio_client_activator.h"

#include <atomic>
#include <mutex>
#include <string>

#include "com_object.h"
#include "com_thread.h"
#include "hresult.h"
#include "unique_handle.h"

using Microsoft::WRL::ComPtr;

namespace procaudio {
namespace wasapi {

namespace {

// The agile completion handler: the audio service calls it on one of its own threads (an
// MTA worker); it only stores the result and signals an event the activating thread waits
// on. Reference counted: after a timeout the pending operation still holds it. It also owns
// the activation parameters the call is given: the operation may read them until it
// completes, which can be after the activating thread gave up waiting and its stack is gone.
class CompletionHandler final : public IActivateAudioInterfaceCompletionHandler,
                                public IAgileObject {
 public:
  explicit CompletionHandler(const LoopbackTarget &target)
      : done_(CreateEventW(nullptr, TRUE, FALSE, nullptr)), params_(activation_params_for(target)) {
    variant_.vt = VT_BLOB;
    variant_.blob.cbSize = sizeof params_;
    variant_.blob.pBlobData = reinterpret_cast<BYTE *>(&params_);
  }
  CompletionHandler(const CompletionHandler &) = delete;
  CompletionHandler &operator=(const CompletionHandler &) = delete;

  HANDLE done_event() const { return done_.get(); }
  PROPVARIANT *activation_params() { return &variant_; }

  struct Result {
    HRESULT get_result_hr = E_PENDING;  // of GetActivateResult
    HRESULT activate_hr = E_PENDING;    // the activation's own result
    HRESULT query_hr = E_PENDING;       // of QueryInterface(IAudioClient)
    ComPtr<IAudioClient> client;
  };
  Result result() {
    std::lock_guard<std::mutex> lock(mutex_);
    return result_;
  }

  // IUnknown
  HRESULT STDMETHODCALLTYPE QueryInterface(REFIID riid, void **object) override {
    if (object == nullptr) {
      return E_POINTER;
    }
    if (riid == __uuidof(IUnknown) || riid == __uuidof(IActivateAudioInterfaceCompletionHandler)) {
      *object = static_cast<IActivateAudioInterfaceCompletionHandler *>(this);
    } else if (riid == __uuidof(IAgileObject)) {
      *object = static_cast<IAgileObject *>(this);
    } else {
      *object = nullptr;
      return E_NOINTERFACE;
    }
    AddRef();
    return S_OK;
  }
  ULONG STDMETHODCALLTYPE AddRef() override { return ++refs_; }
  ULONG STDMETHODCALLTYPE Release() override {
    const ULONG refs = --refs_;
    if (refs == 0) {
      delete this;
    }
    return refs;
  }

  // IActivateAudioInterfaceCompletionHandler
  HRESULT STDMETHODCALLTYPE
  ActivateCompleted(IActivateAudioInterfaceAsyncOperation *operation) override {
    Result r;
    ComPtr<IUnknown> unknown;
    r.get_result_hr = operation != nullptr
                          ? operation->GetActivateResult(&r.activate_hr, unknown.GetAddressOf())
                          : E_POINTER;
    if (SUCCEEDED(r.get_result_hr) && SUCCEEDED(r.activate_hr)) {
      r.query_hr = unknown ? unknown.As(&r.client) : E_POINTER;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      result_ = std::move(r);
    }
    SetEvent(done_.get());
    return S_OK;
  }

 private:
  ~CompletionHandler() = default;

  std::atomic<ULONG> refs_{1};
  UniqueHandle done_;
  AUDIOCLIENT_ACTIVATION_PARAMS params_;
  PROPVARIANT variant_ = {};  // VT_BLOB over params_
  std::mutex mutex_;
  Result result_;
};

std::string describe(const LoopbackTarget &target) {
  return std::string(target.include_tree ? "the process tree of pid "
                                         : "everything except the "
                                           "process tree of pid ") +
         std::to_string(target.pid);
}

// HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND), which is not a constant expression.
constexpr HRESULT kFileNotFound = static_cast<HRESULT>(0x80070002u);

// An activation failure with HRESULT `hr` from `call`, as an error a user can act on.
CaptureError activation_error(HRESULT hr, const char *call, const LoopbackTarget &target) {
  switch (hr) {
    case kFileNotFound:  // no VAD\Process_Loopback
    case E_NOTIMPL:
    case REGDB_E_CLASSNOTREG:
      return hresult_error(
          ErrorKind::kBackendUnavailable,
          "Windows process loopback unavailable: this system's audio service cannot capture "
          "the audio of a single process (it needs Windows 10 version 2004, build 19041, or "
          "later; wine does not provide it).",
          call, hr);
    case AUDCLNT_E_SERVICE_NOT_RUNNING:
      return hresult_error(ErrorKind::kBackendUnavailable,
                           "The Windows Audio service is not running: start it (services.msc, "
                           "\"Windows Audio\") and try again.",
                           call, hr);
    case E_ACCESSDENIED:
      return hresult_error(ErrorKind::kAccessDenied,
                           "Windows refused to capture " + describe(target) +
                               " (access denied): capture as the user that runs it, or "
                               "elevated.",
                           call, hr);
    default:
      break;
  }
  return hresult_error(ErrorKind::kFailed,
                       "Activating process-loopback capture of " + describe(target) + " failed.",
                       call, hr);
}

// mmdevapi's ActivateAudioInterfaceAsync, looked up at run time (once per process): on a
// Windows without it the plugin still loads and says what is missing.
struct SystemActivate {
  ActivateAudioInterfaceAsyncFn fn;  // empty if missing
  DWORD lookup_error = 0;            // GetLastError() of the failed lookup
};

const SystemActivate &system_activate() {
  static const SystemActivate resolved = [] {
    using Fn = HRESULT(WINAPI *)(LPCWSTR, REFIID, PROPVARIANT *,
                                 IActivateAudioInterfaceCompletionHandler *,
                                 IActivateAudioInterfaceAsyncOperation **);
    SystemActivate r;
    // Never freed: audio objects from this DLL may outlive any one element.
    HMODULE mmdevapi = LoadLibraryExW(L"mmdevapi.dll", nullptr, LOAD_LIBRARY_SEARCH_SYSTEM32);
    auto fn = mmdevapi == nullptr ? nullptr
                                  : reinterpret_cast<Fn>(reinterpret_cast<void (*)()>(
                                        GetProcAddress(mmdevapi, "ActivateAudioInterfaceAsync")));
    if (fn == nullptr) {
      r.lookup_error = GetLastError();
    } else {
      r.fn = fn;
    }
    return r;
  }();
  return resolved;
}

}  // namespace

AUDIOCLIENT_ACTIVATION_PARAMS activation_params_for(const LoopbackTarget &target) {
  AUDIOCLIENT_ACTIVATION_PARAMS params = {};
  params.ActivationType = AUDIOCLIENT_ACTIVATION_TYPE_PROCESS_LOOPBACK;
  params.ProcessLoopbackParams.TargetProcessId = target.pid;
  params.ProcessLoopbackParams.ProcessLoopbackMode =
      target.include_tree ? PROCESS_LOOPBACK_MODE_INCLUDE_TARGET_PROCESS_TREE
                          : PROCESS_LOOPBACK_MODE_EXCLUDE_TARGET_PROCESS_TREE;
  return params;
}

ProcessLoopbackActivator::ProcessLoopbackActivator(Logger log, uint32_t timeout_ms,
                                                   ActivateAudioInterfaceAsyncFn activate_fn)
    : log_(std::move(log)), timeout_ms_(timeout_ms), activate_fn_(std::move(activate_fn)) {}

CaptureError ProcessLoopbackActivator::activate(const LoopbackTarget &target,
                                                ComPtr<IAudioClient> &client) {
  client.Reset();
  // Bounded: activate_here() waits at most timeout_ms for the completion handler.
  return run_on_mta_thread([&] { return activate_here(target, client); });
}

CaptureError ProcessLoopbackActivator::activate_here(const LoopbackTarget &target,
                                                     ComPtr<IAudioClient> &client) {
  const char *const call = "ActivateAudioInterfaceAsync(VAD\\Process_Loopback, IAudioClient)";
  const ActivateAudioInterfaceAsyncFn &fn = activate_fn_ ? activate_fn_ : system_activate().fn;
  if (!fn) {
    CaptureError error = win32_error(
        ErrorKind::kBackendUnavailable,
        "Windows process loopback unavailable: mmdevapi.dll has no ActivateAudioInterfaceAsync "
        "(Windows 10 version 2004, build 19041, or later is needed).",
        "GetProcAddress(mmdevapi.dll, ActivateAudioInterfaceAsync)",
        system_activate().lookup_error);
    return error;
  }

  auto *raw_handler = new CompletionHandler(target);
  ComPtr<IActivateAudioInterfaceCompletionHandler> handler =
      adopt<IActivateAudioInterfaceCompletionHandler>(raw_handler);
  if (raw_handler->done_event() == nullptr) {
    return win32_error(ErrorKind::kFailed, "Could not create an event for audio activation.",
                       "CreateEventW", GetLastError());
  }

  PROCAUDIO_DEBUG(log_, "activating process loopback: %s", describe(target).c_str());
  ComPtr<IActivateAudioInterfaceAsyncOperation> operation;
  const HRESULT hr = fn(VIRTUAL_AUDIO_DEVICE_PROCESS_LOOPBACK, __uuidof(IAudioClient),
                        raw_handler->activation_params(), handler.Get(), operation.GetAddressOf());
  if (FAILED(hr)) {
    CaptureError error = activation_error(hr, call, target);
    return error;
  }

  const DWORD wait = WaitForSingleObject(raw_handler->done_event(), timeout_ms_);
  if (wait != WAIT_OBJECT_0) {
    CaptureError error;
    if (wait == WAIT_TIMEOUT) {
      error = {ErrorKind::kTimeout,
               "The Windows audio service did not answer the request to capture " +
                   describe(target) + " within " + std::to_string(timeout_ms_) + " ms.",
               std::string(call) + ": the completion handler was not called within " +
                   std::to_string(timeout_ms_) + " ms"};
    } else {
      error = win32_error(ErrorKind::kFailed, "Waiting for audio activation failed.",
                          "WaitForSingleObject(activation completed)", GetLastError());
    }
    return error;
  }

  CompletionHandler::Result result = raw_handler->result();
  CaptureError error;
  if (FAILED(result.get_result_hr)) {
    error = activation_error(result.get_result_hr,
                             "IActivateAudioInterfaceAsyncOperation::GetActivateResult", target);
  } else if (FAILED(result.activate_hr)) {
    error =
        activation_error(result.activate_hr,
                         "ActivateAudioInterfaceAsync(VAD\\Process_Loopback) activation", target);
  } else if (FAILED(result.query_hr) || !result.client) {
    error = hresult_error(
        ErrorKind::kFailed, "The process-loopback activation returned no audio client.",
        "QueryInterface(IAudioClient)", FAILED(result.query_hr) ? result.query_hr : E_POINTER);
  }
  if (error) {
    return error;
  }
  PROCAUDIO_INFO(log_, "process loopback activated: %s", describe(target).c_str());
  client = std::move(result.client);
  return {};
}

}  // namespace wasapi
}  // namespace procaudio
