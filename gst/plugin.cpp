// SPDX-License-Identifier: LGPL-2.1-or-later
// The procaudio plugin: registers the process-audio sources this build has, and the device
// providers that list the applications they can capture. Each backend registers its own
// features (procaudio::register_NAME(), beside its element); gst/meson.build lists them.
#include "config.h"

#include <gst/gst.h>

#include "backends.h"

namespace procaudio {
#define PROCAUDIO_DECLARE_BACKEND(name) gboolean register_##name(GstPlugin *plugin);
PROCAUDIO_BACKENDS(PROCAUDIO_DECLARE_BACKEND)
#undef PROCAUDIO_DECLARE_BACKEND
}  // namespace procaudio

static gboolean plugin_init(GstPlugin *plugin) {
  gboolean ok = TRUE;
#define PROCAUDIO_REGISTER_BACKEND(name) ok &= procaudio::register_##name(plugin);
  PROCAUDIO_BACKENDS(PROCAUDIO_REGISTER_BACKEND)
#undef PROCAUDIO_REGISTER_BACKEND
  (void)plugin;
  return ok;
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, procaudio,
                  "Capture the audio of one process: wasapiprocsrc (Windows), pipewireprocsrc "
                  "(Linux)",
                  plugin_init, PACKAGE_VERSION, GST_LICENSE, GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)
