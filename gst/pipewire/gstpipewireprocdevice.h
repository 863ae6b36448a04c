// SPDX-License-Identifier: LGPL-2.1-or-later
// The device pipewireprocdeviceprovider lists for one application: its name, what
// pipewireprocsrc captures, the application's properties, and the element that captures it.
#pragma once

#include <gst/gst.h>

#include "pw_app_list.h"

G_BEGIN_DECLS

#define GST_TYPE_PIPEWIRE_PROC_DEVICE (gst_pipewire_proc_device_get_type())
G_DECLARE_FINAL_TYPE(GstPipeWireProcDevice, gst_pipewire_proc_device, GST, PIPEWIRE_PROC_DEVICE,
                     GstDevice)

G_END_DECLS

// A new (floating) device for `app`, whose caps are `caps` (not taken).
GstDevice *gst_pipewire_proc_device_new(const procaudio::pipewire::Application &app, GstCaps *caps);
