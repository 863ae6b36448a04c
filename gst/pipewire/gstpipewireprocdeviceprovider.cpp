// SPDX-License-Identifier: LGPL-2.1-or-later
// pipewireprocdeviceprovider: one device per application with an audio output stream, from
// the PipeWire registry the capture backends share (pw_app_watch.h). While started, the
// devices follow the registry's events: DEVICE_ADDED when an application's first stream
// appears, DEVICE_CHANGED when it starts or pauses a stream or its stream count changes,
// DEVICE_REMOVED when its last stream goes. probe() lists the applications once.
//
// Threads: the watch's events run on the connection's thread loop with its lock held (those
// of start() on the caller's thread inside start()), and they alone touch the device table
// between start() and stop(); stop() returns only once no event can come any more. The
// GstDeviceProvider calls it makes (device_add, _changed, _remove) post on the provider's
// bus and take only its object lock.
#include "gstpipewireprocdeviceprovider.h"

#include <memory>
#include <vector>

#include "gstpipewireprocdevice.h"
#include "pipewire_backend.h"
#include "procaudiosrc/gstprocaudio-utils.h"
#include "pw_app_watch.h"

GST_DEBUG_CATEGORY_STATIC(gst_pipewire_proc_device_provider_debug);
#define GST_CAT_DEFAULT gst_pipewire_proc_device_provider_debug

using procaudio::pipewire::AppWatch;

struct _GstPipeWireProcDeviceProvider {
  GstProcAudioDeviceProvider parent;
};

G_DEFINE_TYPE(GstPipeWireProcDeviceProvider, gst_pipewire_proc_device_provider,
              GST_TYPE_PROC_AUDIO_DEVICE_PROVIDER)
// Rank MARGINAL: the lowest GstDeviceMonitor asks. Device providers feed no auto-plugging
// (autoaudiosrc goes by element ranks), so listing applications picks nothing by itself.
GST_DEVICE_PROVIDER_REGISTER_DEFINE(pipewireprocdeviceprovider, "pipewireprocdeviceprovider",
                                    GST_RANK_MARGINAL, GST_TYPE_PIPEWIRE_PROC_DEVICE_PROVIDER)

static std::unique_ptr<procaudio::AppWatcher> make_watcher(GstProcAudioDeviceProvider *,
                                                           procaudio::Logger log,
                                                           procaudio::AppEvents *events) {
  return std::make_unique<AppWatch>(std::move(log), events);
}

static procaudio::CaptureError list(GstProcAudioDeviceProvider *, const procaudio::Logger &log,
                                    std::vector<procaudio::Application> *apps) {
  return AppWatch::list(log, apps);
}

static void gst_pipewire_proc_device_provider_class_init(
    GstPipeWireProcDeviceProviderClass *klass) {
  GST_DEBUG_CATEGORY_INIT(gst_pipewire_proc_device_provider_debug, "pipewireprocdeviceprovider", 0,
                          "PipeWire process audio device provider");
  auto *base_class = GST_PROC_AUDIO_DEVICE_PROVIDER_CLASS(klass);
  base_class->debug_category = gst_pipewire_proc_device_provider_debug;
  base_class->make_device = gst_pipewire_proc_device_new;
  base_class->make_watcher = make_watcher;
  base_class->list = list;

  gst_device_provider_class_set_static_metadata(
      GST_DEVICE_PROVIDER_CLASS(klass), "PipeWire process audio device provider",
      "Audio/Source/Application",
      "Lists the applications playing audio through PipeWire, one device each (a child process "
      "shows as its parent of the same executable), live as they start, pause and stop "
      "playing; each device's element is a pipewireprocsrc capturing that application's "
      "process tree",
      "procaudio developers <https://github.com/procaudio/procaudio>");
}

static void gst_pipewire_proc_device_provider_init(GstPipeWireProcDeviceProvider *self) {
  gst_proc_audio_device_provider_set_caps(
      GST_PROC_AUDIO_DEVICE_PROVIDER(self),
      procaudio::caps_for(procaudio::pipewire::PipeWireBackend::supported_formats()));
}
