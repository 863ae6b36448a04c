// SPDX-License-Identifier: LGPL-2.1-or-later
#include "app_devices.h"

#include <utility>

namespace procaudio {

AppDevices::AppDevices(GstDeviceProvider *provider, GstCaps *caps, DeviceFactory make)
    : provider_(provider), caps_(caps), make_(std::move(make)) {}

AppDevices::~AppDevices() {
  for (auto &entry : devices_) {
    gst_object_unref(entry.second);
  }
}

void AppDevices::on_app_added(const Application &app) {
  if (devices_.count(app.pid) != 0) {  // not normally: a pid has one group
    on_app_removed(app);
  }
  GstDevice *device = make_(app, caps_);
  devices_[app.pid] = GST_DEVICE(gst_object_ref(device));
  gst_device_provider_device_add(provider_, device);
}

void AppDevices::on_app_changed(const Application &app) {
  auto found = devices_.find(app.pid);
  if (found == devices_.end()) {
    on_app_added(app);
    return;
  }
  GstDevice *old_device = found->second;
  GstDevice *device = make_(app, caps_);
  found->second = GST_DEVICE(gst_object_ref(device));
  gst_device_provider_device_changed(provider_, device, old_device);
  gst_object_unref(old_device);
}

void AppDevices::on_app_removed(const Application &app) {
  auto found = devices_.find(app.pid);
  if (found == devices_.end()) {
    return;
  }
  GstDevice *device = found->second;
  devices_.erase(found);
  gst_device_provider_device_remove(provider_, device);
  gst_object_unref(device);
}

GList *devices_of(const std::vector<Application> &apps, GstCaps *caps, const DeviceFactory &make) {
  GList *devices = nullptr;
  for (const Application &app : apps) {
    devices = g_list_append(devices, make(app, caps));
  }
  return devices;
}

}  // namespace procaudio
