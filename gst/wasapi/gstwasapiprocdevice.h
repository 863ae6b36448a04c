// SPDX-License-Identifier: LGPL-2.1-or-later
// The device wasapiprocdeviceprovider lists for one application: its name, what
// wasapiprocsrc captures, the application's properties, and the element that captures it.
#pragma once

#include <gst/gst.h>

#include "core/app_list.h"

G_BEGIN_DECLS

#define GST_TYPE_WASAPI_PROC_DEVICE (gst_wasapi_proc_device_get_type())
G_DECLARE_FINAL_TYPE(GstWasapiProcDevice, gst_wasapi_proc_device, GST, WASAPI_PROC_DEVICE,
                     GstDevice)

G_END_DECLS

// A new (floating) device for `app`, whose caps are `caps` (not taken).
GstDevice *gst_wasapi_proc_device_new(const procaudio::Application &app, GstCaps *caps);
