// SPDX-License-Identifier: LGPL-2.1-or-later
// Where SessionWatch gets its session managers: one IAudioSessionManager2 per active output
// (render) endpoint, the ones there are now and the ones that become active later (a headset
// plugged in), from IMMDeviceEnumerator and its IMMNotificationClient. Tests hand SessionWatch
// COM fakes of the managers instead. No GStreamer.
#pragma once

#include <windows.h>
// (windows.h first)
#include <audiopolicy.h>
#include <wrl/client.h>

#include <functional>
#include <memory>
#include <vector>

#include "core/capture_error.h"
#include "core/logger.h"

namespace procaudio {
namespace wasapi {

class SessionManagerSource {
 public:
  using Manager = Microsoft::WRL::ComPtr<IAudioSessionManager2>;
  using Added = std::function<void(const Manager &)>;
  virtual ~SessionManagerSource() = default;
  // The managers of the endpoints active now, in `now`; from then on, until stop() returns,
  // `added` gets the manager of each endpoint that becomes active (on a thread of the source's
  // in the MTA, one call at a time). Called on an MTA thread.
  virtual CaptureError start(std::vector<Manager> &now, Added added) = 0;
  virtual void stop() = 0;
};

// The real one. Endpoint notifications come on the audio service's threads, where the
// documentation forbids waiting and (un)registering: the endpoint's id is queued there and a
// thread of this source's activates its manager.
class EndpointSessionManagers final : public SessionManagerSource {
 public:
  explicit EndpointSessionManagers(Logger log = {});
  ~EndpointSessionManagers() override;
  EndpointSessionManagers(const EndpointSessionManagers &) = delete;
  EndpointSessionManagers &operator=(const EndpointSessionManagers &) = delete;

  CaptureError start(std::vector<Manager> &now, Added added) override;
  void stop() override;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace wasapi
}  // namespace procaudio
