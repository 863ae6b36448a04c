// SPDX-License-Identifier: LGPL-2.1-or-later
// GstProcAudioDeviceProvider: the abstract base of the process-audio device providers
// (pipewireprocdeviceprovider, wasapiprocdeviceprovider). It lists the applications that play
// audio as devices of class Audio/Source/Application: probe() once, and between start() and
// stop() live, as the platform's AppWatcher reports them (app_devices.h). A subclass says how
// to watch and list the applications on its platform and how to make a device of one.
#pragma once

#include <gst/gst.h>

#include <memory>
#include <vector>

#include "core/app_list.h"
#include "core/capture_error.h"
#include "core/logger.h"

G_BEGIN_DECLS

#define GST_TYPE_PROC_AUDIO_DEVICE_PROVIDER (gst_proc_audio_device_provider_get_type())
G_DECLARE_DERIVABLE_TYPE(GstProcAudioDeviceProvider, gst_proc_audio_device_provider, GST,
                         PROC_AUDIO_DEVICE_PROVIDER, GstDeviceProvider)

struct _GstProcAudioDeviceProviderClass {
  GstDeviceProviderClass parent_class;

  // Set by the subclass's class_init. Its debug category, where the base logs too.
  GstDebugCategory *debug_category;
  // A device for `app`, with `caps` (what the element captures).
  GstDevice *(*make_device)(const procaudio::Application &app, GstCaps *caps);
  // The platform's live watch, telling `events`; not started yet.
  std::unique_ptr<procaudio::AppWatcher> (*make_watcher)(GstProcAudioDeviceProvider *self,
                                                         procaudio::Logger log,
                                                         procaudio::AppEvents *events);
  // The applications playing now, once (probe()).
  procaudio::CaptureError (*list)(GstProcAudioDeviceProvider *self, const procaudio::Logger &log,
                                  std::vector<procaudio::Application> *apps);
};

// The caps every device gets (the element's pad template caps): takes `caps`. Called from the
// subclass's instance init.
void gst_proc_audio_device_provider_set_caps(GstProcAudioDeviceProvider *self, GstCaps *caps);

G_END_DECLS
