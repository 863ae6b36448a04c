// SPDX-License-Identifier: LGPL-2.1-or-later
// The devices a process-audio device provider shows while started: one GstDevice per
// Application its platform's watch reports, added, replaced and removed as the watch says.
// Both providers (PipeWire, WASAPI) keep one between start() and stop(); only how a device is
// made differs.
//
// Threads: the AppEvents calls come from the watch, one at a time (on the PipeWire thread
// loop, or the session watch's worker); the GstDeviceProvider calls they make post on the
// provider's bus and take only its object lock.
#pragma once

#include <gst/gst.h>

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "core/app_list.h"

namespace procaudio {

using DeviceFactory = std::function<GstDevice *(const Application &app, GstCaps *caps)>;

class AppDevices final : public AppEvents {
 public:
  // `caps` stays the provider's (it outlives this).
  AppDevices(GstDeviceProvider *provider, GstCaps *caps, DeviceFactory make);
  ~AppDevices() override;
  AppDevices(const AppDevices &) = delete;
  AppDevices &operator=(const AppDevices &) = delete;

  void on_app_added(const Application &app) override;
  // A device's properties are fixed once made, so a change is a new device that takes the
  // old one's place (gst_device_provider_device_changed) and is posted with it.
  void on_app_changed(const Application &app) override;
  void on_app_removed(const Application &app) override;

  size_t size() const { return devices_.size(); }

 private:
  GstDeviceProvider *provider_;
  GstCaps *caps_;
  DeviceFactory make_;
  std::map<uint32_t, GstDevice *> devices_;  // by root pid; one reference of ours each
};

// probe(): a device for each application, as a list the caller owns.
GList *devices_of(const std::vector<Application> &apps, GstCaps *caps, const DeviceFactory &make);

}  // namespace procaudio
