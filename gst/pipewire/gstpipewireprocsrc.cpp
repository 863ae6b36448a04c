// SPDX-License-Identifier: LGPL-2.1-or-later
// pipewireprocsrc: everything but the backend lives in GstProcAudioSrc; this type only
// names the backend, the element's metadata and its debug category.
#include "gstpipewireprocsrc.h"

#include "gstpipewireprocdeviceprovider.h"
#include "pipewire_backend.h"

GST_DEBUG_CATEGORY_STATIC(gst_pipewire_proc_src_debug);

struct _GstPipeWireProcSrc {
  GstProcAudioSrc parent;
};

G_DEFINE_TYPE(GstPipeWireProcSrc, gst_pipewire_proc_src, GST_TYPE_PROC_AUDIO_SRC)
// Rank NONE: it captures one application, never what autoaudiosrc should pick.
GST_ELEMENT_REGISTER_DEFINE(pipewireprocsrc, "pipewireprocsrc", GST_RANK_NONE,
                            GST_TYPE_PIPEWIRE_PROC_SRC)

static procaudio::CaptureBackend *gst_pipewire_proc_src_create_backend(
    GstProcAudioSrc *self, const procaudio::Logger &logger) {
  return new procaudio::pipewire::PipeWireBackend(logger);
}

static void gst_pipewire_proc_src_class_init(GstPipeWireProcSrcClass *klass) {
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GstProcAudioSrcClass *src_class = GST_PROC_AUDIO_SRC_CLASS(klass);

  GST_DEBUG_CATEGORY_INIT(gst_pipewire_proc_src_debug, "pipewireprocsrc", 0,
                          "PipeWire process audio source");

  gst_element_class_set_static_metadata(
      element_class, "PipeWire process audio source", "Source/Audio",
      "Captures the audio of one process through PipeWire: set pid or process-name (e.g. "
      "process-name=firefox; a Wine or Proton game by its .exe name; sandboxed (Flatpak) apps "
      "too); mode=include-tree also takes its child processes, mode=exclude-tree everything "
      "else instead. Needs a running PipeWire with a session manager (WirePlumber). Ends with "
      "EOS when the process exits, or with on-target-exit=wait follows the application to its "
      "next process.",
      "procaudio developers <https://github.com/procaudio/procaudio>");

  src_class->create_backend = gst_pipewire_proc_src_create_backend;
  src_class->debug_category = gst_pipewire_proc_src_debug;
  gst_proc_audio_src_class_set_formats(src_class,
                                       procaudio::pipewire::PipeWireBackend::supported_formats());
}

static void gst_pipewire_proc_src_init(GstPipeWireProcSrc *self) {}

gboolean procaudio::register_pipewire(GstPlugin *plugin) {
  // Both, even if the first fails: the plugin then still offers what does register.
  const gboolean element = GST_ELEMENT_REGISTER(pipewireprocsrc, plugin);
  const gboolean provider = GST_DEVICE_PROVIDER_REGISTER(pipewireprocdeviceprovider, plugin);
  return element && provider;
}
