// SPDX-License-Identifier: LGPL-2.1-or-later
#include "endpoint_activator.h"

#include "wasapi/com_thread.h"
#include "wasapi/endpoints.h"
#include "wasapi/hresult.h"

using Microsoft::WRL::ComPtr;

namespace procaudio {
namespace wasapi {
namespace testing {

CaptureError EndpointActivator::activate(const LoopbackTarget &, ComPtr<IAudioClient> &client) {
  client.Reset();
  return run_on_mta_thread([&client] {
    ComPtr<IMMDevice> device;
    if (CaptureError error = default_endpoint(eCapture, device)) {
      return error;
    }
    const HRESULT hr = device->Activate(__uuidof(IAudioClient), CLSCTX_ALL, nullptr,
                                        reinterpret_cast<void **>(client.GetAddressOf()));
    if (FAILED(hr)) {
      return hresult_error(ErrorKind::kFailed, "The default capture endpoint cannot be opened.",
                           "IMMDevice::Activate(IAudioClient)", hr);
    }
    return CaptureError{};
  });
}

}  // namespace testing
}  // namespace wasapi
}  // namespace procaudio
