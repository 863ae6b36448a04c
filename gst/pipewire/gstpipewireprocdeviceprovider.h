// SPDX-License-Identifier: LGPL-2.1-or-later
// pipewireprocdeviceprovider: the applications playing audio through PipeWire, as devices of
// class Audio/Source/Application, live (gst-device-monitor-1.0, Gst.DeviceMonitor).
#pragma once

#include <gst/gst.h>

#include "procaudiosrc/gstprocaudiodeviceprovider.h"

G_BEGIN_DECLS

#define GST_TYPE_PIPEWIRE_PROC_DEVICE_PROVIDER (gst_pipewire_proc_device_provider_get_type())
G_DECLARE_FINAL_TYPE(GstPipeWireProcDeviceProvider, gst_pipewire_proc_device_provider, GST,
                     PIPEWIRE_PROC_DEVICE_PROVIDER, GstProcAudioDeviceProvider)

GST_DEVICE_PROVIDER_REGISTER_DECLARE(pipewireprocdeviceprovider);

G_END_DECLS
