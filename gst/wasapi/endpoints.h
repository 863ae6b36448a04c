// SPDX-License-Identifier: LGPL-2.1-or-later
// The machine's audio endpoints (IMMDeviceEnumerator): the default render endpoint, whose mix
// rate is the capture rate to prefer, and the default endpoint of either direction for the
// tests that run the capture loop against a real capture endpoint. Call from a thread in the
// MTA (run_on_mta_thread). No GStreamer.
#pragma once

#include <windows.h>
// (windows.h first)
#include <mmdeviceapi.h>
#include <wrl/client.h>

#include <cstdint>

#include "core/capture_error.h"

namespace procaudio {
namespace wasapi {

// IMMDeviceEnumerator::GetDefaultAudioEndpoint(flow, eConsole). No endpoint (no audio
// device, or the audio service is not running) -> kBackendUnavailable.
CaptureError default_endpoint(EDataFlow flow, Microsoft::WRL::ComPtr<IMMDevice> &device);

// The shared-mode mix rate of the default render endpoint: the rate the audio engine mixes
// what the target plays at, so the one a capture converts least from.
CaptureError default_render_mix_rate(uint32_t &rate);

}  // namespace wasapi
}  // namespace procaudio
