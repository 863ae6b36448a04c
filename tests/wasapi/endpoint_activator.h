// SPDX-License-Identifier: LGPL-2.1-or-later
// The test seam that hands the capture loop a real WASAPI client: an IAudioClient of the
// default capture endpoint (IMMDevice::Activate) instead of a process-loopback one. Under wine
// that endpoint is winepulse's default PulseAudio source, the private session's null-sink
// monitor, so WasapiBackend and its capture thread (the code the element runs after
// activation) run against wine's real shared-mode capture client. Process loopback itself
// exists only on Windows: the target is ignored.
#pragma once

#include "wasapi/audio_client_activator.h"

namespace procaudio {
namespace wasapi {
namespace testing {

class EndpointActivator final : public AudioClientActivator {
 public:
  CaptureError activate(const LoopbackTarget &target,
                        Microsoft::WRL::ComPtr<IAudioClient> &client) override;
  bool loopback() const override { return false; }  // a capture endpoint's own stream
};

}  // namespace testing
}  // namespace wasapi
}  // namespace procaudio
