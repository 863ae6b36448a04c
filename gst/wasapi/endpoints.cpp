// SPDX-License-Identifier: LGPL-2.1-or-later
#include "endpoints.h"

#include <audioclient.h>
#include <objbase.h>

#include "hresult.h"

using Microsoft::WRL::ComPtr;

namespace procaudio {
namespace wasapi {

CaptureError default_endpoint(EDataFlow flow, ComPtr<IMMDevice> &device) {
  device.Reset();
  ComPtr<IMMDeviceEnumerator> enumerator;
  HRESULT hr = CoCreateInstance(__uuidof(MMDeviceEnumerator), nullptr, CLSCTX_ALL,
                                IID_PPV_ARGS(enumerator.GetAddressOf()));
  if (FAILED(hr)) {
    return hresult_error(ErrorKind::kBackendUnavailable,
                         "The Windows audio endpoints cannot be listed.",
                         "CoCreateInstance(MMDeviceEnumerator)", hr);
  }
  hr = enumerator->GetDefaultAudioEndpoint(flow, eConsole, device.GetAddressOf());
  if (FAILED(hr)) {
    return hresult_error(ErrorKind::kBackendUnavailable,
                         flow == eRender ? "This system has no default audio output device."
                                         : "This system has no default audio input device.",
                         "IMMDeviceEnumerator::GetDefaultAudioEndpoint", hr);
  }
  return {};
}

CaptureError default_render_mix_rate(uint32_t &rate) {
  rate = 0;
  ComPtr<IMMDevice> device;
  if (CaptureError error = default_endpoint(eRender, device)) {
    return error;
  }
  ComPtr<IAudioClient> client;
  HRESULT hr = device->Activate(__uuidof(IAudioClient), CLSCTX_ALL, nullptr,
                                reinterpret_cast<void **>(client.GetAddressOf()));
  if (FAILED(hr)) {
    return hresult_error(ErrorKind::kFailed, "The default audio output device cannot be opened.",
                         "IMMDevice::Activate(IAudioClient)", hr);
  }
  WAVEFORMATEX *mix = nullptr;
  hr = client->GetMixFormat(&mix);
  if (FAILED(hr) || mix == nullptr) {
    return hresult_error(ErrorKind::kFailed,
                         "The default audio output device reports no mix format.",
                         "IAudioClient::GetMixFormat", FAILED(hr) ? hr : E_POINTER);
  }
  rate = mix->nSamplesPerSec;
  CoTaskMemFree(mix);
  return {};
}

}  // namespace wasapi
}  // namespace procaudio
