// SPDX-License-Identifier: LGPL-2.1-or-later
// wasapiprocsrc: everything but the backend is GstProcAudioSrc's (properties, caps,
// timestamps, states, errors); see docs/windows.md.
#include "gstwasapiprocsrc.h"

#include "gstwasapiprocdeviceprovider.h"
#include "wasapi_backend.h"

GST_DEBUG_CATEGORY_STATIC(gst_wasapi_proc_src_debug);

struct _GstWasapiProcSrc {
  GstProcAudioSrc parent;
};

G_DEFINE_TYPE(GstWasapiProcSrc, gst_wasapi_proc_src, GST_TYPE_PROC_AUDIO_SRC)
// Rank NONE: it captures one application, never what autoaudiosrc should pick.
GST_ELEMENT_REGISTER_DEFINE(wasapiprocsrc, "wasapiprocsrc", GST_RANK_NONE, GST_TYPE_WASAPI_PROC_SRC)

namespace {

procaudio::CaptureBackend *create_backend(GstProcAudioSrc *, const procaudio::Logger &logger) {
  return new procaudio::wasapi::WasapiBackend(logger);
}

}  // namespace

static void gst_wasapi_proc_src_init(GstWasapiProcSrc *) {}

static void gst_wasapi_proc_src_class_init(GstWasapiProcSrcClass *klass) {
  GstProcAudioSrcClass *src_class = GST_PROC_AUDIO_SRC_CLASS(klass);
  GST_DEBUG_CATEGORY_INIT(gst_wasapi_proc_src_debug, "wasapiprocsrc", 0,
                          "WASAPI process-loopback audio source");
  src_class->debug_category = gst_wasapi_proc_src_debug;
  src_class->create_backend = create_backend;
  gst_proc_audio_src_class_set_formats(src_class,
                                       procaudio::wasapi::WasapiBackend::supported_formats());
  gst_element_class_set_static_metadata(
      GST_ELEMENT_CLASS(klass), "Process audio source (WASAPI)", "Source/Audio",
      "Captures the audio of one process (and its children), or of everything except it, "
      "through WASAPI process loopback (Windows 10 version 2004 or later): set pid or "
      "process-name (e.g. process-name=chrome.exe). Ends with EOS when the process exits, or "
      "with on-target-exit=wait follows the application to its next process.",
      "procaudio developers");
}

gboolean procaudio::register_wasapi(GstPlugin *plugin) {
  // Both, even if the first fails: the plugin then still offers what does register.
  const gboolean element = GST_ELEMENT_REGISTER(wasapiprocsrc, plugin);
  const gboolean provider = GST_DEVICE_PROVIDER_REGISTER(wasapiprocdeviceprovider, plugin);
  return element && provider;
}
