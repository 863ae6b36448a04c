// SPDX-License-Identifier: LGPL-2.1-or-later
// wasapiprocdeviceprovider: the applications playing audio on Windows, as devices of class
// Audio/Source/Application, live (gst-device-monitor-1.0, Gst.DeviceMonitor).
#pragma once

#include <gst/gst.h>

#include "procaudiosrc/gstprocaudiodeviceprovider.h"

#include <memory>

G_BEGIN_DECLS

#define GST_TYPE_WASAPI_PROC_DEVICE_PROVIDER (gst_wasapi_proc_device_provider_get_type())
G_DECLARE_FINAL_TYPE(GstWasapiProcDeviceProvider, gst_wasapi_proc_device_provider, GST,
                     WASAPI_PROC_DEVICE_PROVIDER, GstProcAudioDeviceProvider)

GST_DEVICE_PROVIDER_REGISTER_DECLARE(wasapiprocdeviceprovider);

G_END_DECLS

namespace procaudio {
namespace wasapi {
class SessionManagerSource;
}  // namespace wasapi
}  // namespace procaudio

// Where the provider's next start() and probe() get the session managers they watch (null,
// the default: every active render endpoint's). Tests give COM fakes; call while stopped.
void gst_wasapi_proc_device_provider_set_session_managers(
    GstWasapiProcDeviceProvider *provider,
    std::shared_ptr<procaudio::wasapi::SessionManagerSource> managers);
