// SPDX-License-Identifier: LGPL-2.1-or-later
// Getting a process-loopback IAudioClient: the seam between the backend and the OS.
//
// AudioClientActivator is what the backend asks; tests give it a fake that hands out fake
// COM audio clients. ProcessLoopbackActivator is the real one: it calls
// ActivateAudioInterfaceAsync(VIRTUAL_AUDIO_DEVICE_PROCESS_LOOPBACK, IAudioClient,
// VT_BLOB{AUDIOCLIENT_ACTIVATION_PARAMS}) with an agile completion handler and waits for it,
// bounded. (IMMDevice::Activate cannot take these parameters.) The call itself is injectable
// too, so that the waiting, the timeout and the result handling are tested with a fake
// ActivateAudioInterfaceAsync.
#pragma once

#include <windows.h>
// (windows.h first)
#include <audioclient.h>
#include <mmdeviceapi.h>
#include <wrl/client.h>

#include <cstdint>
#include <functional>

#include "core/capture_error.h"
#include "core/logger.h"
#include "process_loopback_params.h"

namespace procaudio {
namespace wasapi {

struct LoopbackTarget {
  uint32_t pid = 0;          // the process whose tree is included or excluded
  bool include_tree = true;  // false: everything except that tree
};

// The VT_BLOB that ActivateAudioInterfaceAsync is given for `target`.
AUDIOCLIENT_ACTIVATION_PARAMS activation_params_for(const LoopbackTarget &target);

class AudioClientActivator {
 public:
  virtual ~AudioClientActivator() = default;
  // A process-loopback audio client for `target`, not initialized yet. Blocks, bounded.
  // May be called again, from the capture thread, for a fresh client.
  virtual CaptureError activate(const LoopbackTarget &target,
                                Microsoft::WRL::ComPtr<IAudioClient> &client) = 0;
  // Whether the clients need AUDCLNT_STREAMFLAGS_LOOPBACK at Initialize: true for process
  // loopback; false for the clients of a capture endpoint, which the tests hand the capture
  // loop to run it against a real WASAPI implementation.
  virtual bool loopback() const { return true; }
};

// ActivateAudioInterfaceAsync's signature.
using ActivateAudioInterfaceAsyncFn =
    std::function<HRESULT(LPCWSTR device_path, REFIID riid, PROPVARIANT *params,
                          IActivateAudioInterfaceCompletionHandler *handler,
                          IActivateAudioInterfaceAsyncOperation **operation)>;

class ProcessLoopbackActivator final : public AudioClientActivator {
 public:
  static constexpr uint32_t kDefaultTimeoutMs = 5000;

  // `activate_fn` empty: the real ActivateAudioInterfaceAsync (mmdevapi).
  explicit ProcessLoopbackActivator(Logger log = {}, uint32_t timeout_ms = kDefaultTimeoutMs,
                                    ActivateAudioInterfaceAsyncFn activate_fn = {});

  // Runs on a short-lived thread of the multithreaded apartment, so that the client is
  // created (and later used by the capture thread) in the MTA whatever apartment the caller
  // (an application's UI thread, say) is in. Errors:
  //   activation not answered within the timeout      -> kTimeout
  //   activate result 0x80070002 (no VAD\Process_Loopback, e.g. wine, or too old a
  //   Windows), E_NOTIMPL, REGDB_E_CLASSNOTREG           -> kBackendUnavailable,
  //                                                       "process loopback unavailable"
  //   AUDCLNT_E_SERVICE_NOT_RUNNING                     -> kBackendUnavailable
  //   E_ACCESSDENIED                                    -> kAccessDenied
  //   anything else                                     -> kFailed
  // each with the HRESULT in hex and its text in the detail.
  CaptureError activate(const LoopbackTarget &target,
                        Microsoft::WRL::ComPtr<IAudioClient> &client) override;

 private:
  CaptureError activate_here(const LoopbackTarget &target,
                             Microsoft::WRL::ComPtr<IAudioClient> &client);

  Logger log_;
  uint32_t timeout_ms_;
  ActivateAudioInterfaceAsyncFn activate_fn_;
};

}  // namespace wasapi
}  // namespace procaudio
