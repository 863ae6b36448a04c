// The procaudio plugin: registers the process-audio sources this platform has, and the device
// providers that list the applications they can capture.
#include "config.h"

#include <gst/gst.h>

#if defined(HAVE_PIPEWIRE)
#include "pipewire/gstpipewireprocdeviceprovider.h"
#include "pipewire/gstpipewireprocsrc.h"
#endif
#if defined(HAVE_WASAPI)
#include "wasapi/gstwasapiprocdeviceprovider.h"
#include "wasapi/gstwasapiprocsrc.h"
#endif

static gboolean plugin_init(GstPlugin *plugin) {
  gboolean ok = TRUE;
  // Rank NONE: these capture one process, never what autoaudiosrc should pick.
#if defined(HAVE_PIPEWIRE)
  ok &= gst_element_register(plugin, "pipewireprocsrc", GST_RANK_NONE, GST_TYPE_PIPEWIRE_PROC_SRC);
  // Rank MARGINAL: the lowest GstDeviceMonitor asks. Device providers feed no auto-plugging
  // (autoaudiosrc goes by element ranks), so listing applications picks nothing by itself.
  ok &= gst_device_provider_register(plugin, "pipewireprocdeviceprovider", GST_RANK_MARGINAL,
                                     GST_TYPE_PIPEWIRE_PROC_DEVICE_PROVIDER);
#endif
#if defined(HAVE_WASAPI)
  ok &= gst_element_register(plugin, "wasapiprocsrc", GST_RANK_NONE, GST_TYPE_WASAPI_PROC_SRC);
  ok &= gst_device_provider_register(plugin, "wasapiprocdeviceprovider", GST_RANK_MARGINAL,
                                     GST_TYPE_WASAPI_PROC_DEVICE_PROVIDER);
#endif
  (void)plugin;
  return ok;
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, procaudio,
                  "Capture the audio of one process: wasapiprocsrc (Windows), pipewireprocsrc "
                  "(Linux)",
                  plugin_init, PACKAGE_VERSION, GST_LICENSE, GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)
