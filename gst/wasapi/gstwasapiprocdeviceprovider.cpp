// SPDX-License-Identifier: LGPL-2.1-or-later
// wasapiprocdeviceprovider: one device per application with an audio session on an active
// render endpoint, from Windows' session notifications (app_watch.h). While started, the
// devices follow the notifications: DEVICE_ADDED when an application's first session
// appears, DEVICE_CHANGED when one of its sessions starts or stops or its session count
// changes, DEVICE_REMOVED when its last session expires or is disconnected. probe() lists the
// applications once.
//
// Threads: the watch's events run on its SessionWatch's worker thread, one at a time (those
// of start() before start() returns), and they alone touch the device table between start()
// and stop(); stop() returns only once no event can come any more. The GstDeviceProvider
// calls they make (device_add, _changed, _remove) post on the provider's bus and take only
// its object lock.
#include "gstwasapiprocdeviceprovider.h"

#include <utility>
#include <vector>

#include "app_watch.h"
#include "gstwasapiprocdevice.h"
#include "procaudiosrc/gstprocaudio-utils.h"
#include "session_managers.h"
#include "wasapi_backend.h"

GST_DEBUG_CATEGORY_STATIC(gst_wasapi_proc_device_provider_debug);
#define GST_CAT_DEFAULT gst_wasapi_proc_device_provider_debug

using procaudio::wasapi::AppWatch;
using procaudio::wasapi::SessionManagerSource;

struct _GstWasapiProcDeviceProvider {
  GstProcAudioDeviceProvider parent;
  // Null: the system's render endpoints. A pointer, as the instance is C-allocated.
  std::shared_ptr<SessionManagerSource> *managers;
};

G_DEFINE_TYPE(GstWasapiProcDeviceProvider, gst_wasapi_proc_device_provider,
              GST_TYPE_PROC_AUDIO_DEVICE_PROVIDER)
// Rank MARGINAL: the lowest GstDeviceMonitor asks. Device providers feed no auto-plugging
// (autoaudiosrc goes by element ranks), so listing applications picks nothing by itself.
GST_DEVICE_PROVIDER_REGISTER_DEFINE(wasapiprocdeviceprovider, "wasapiprocdeviceprovider",
                                    GST_RANK_MARGINAL, GST_TYPE_WASAPI_PROC_DEVICE_PROVIDER)

void gst_wasapi_proc_device_provider_set_session_managers(
    GstWasapiProcDeviceProvider *provider, std::shared_ptr<SessionManagerSource> managers) {
  *provider->managers = std::move(managers);
}

static std::unique_ptr<procaudio::AppWatcher> make_watcher(GstProcAudioDeviceProvider *base,
                                                           procaudio::Logger log,
                                                           procaudio::AppEvents *events) {
  auto *self = GST_WASAPI_PROC_DEVICE_PROVIDER(base);
  return std::make_unique<AppWatch>(std::move(log), events, *self->managers);
}

static procaudio::CaptureError list(GstProcAudioDeviceProvider *base, const procaudio::Logger &log,
                                    std::vector<procaudio::Application> *apps) {
  auto *self = GST_WASAPI_PROC_DEVICE_PROVIDER(base);
  return AppWatch::list(log, *self->managers, apps);
}

static void gst_wasapi_proc_device_provider_finalize(GObject *object) {
  auto *self = GST_WASAPI_PROC_DEVICE_PROVIDER(object);
  delete self->managers;  // a running watch holds managers of its own
  self->managers = nullptr;
  G_OBJECT_CLASS(gst_wasapi_proc_device_provider_parent_class)->finalize(object);
}

static void gst_wasapi_proc_device_provider_class_init(GstWasapiProcDeviceProviderClass *klass) {
  GST_DEBUG_CATEGORY_INIT(gst_wasapi_proc_device_provider_debug, "wasapiprocdeviceprovider", 0,
                          "WASAPI process audio device provider");
  G_OBJECT_CLASS(klass)->finalize = gst_wasapi_proc_device_provider_finalize;
  auto *base_class = GST_PROC_AUDIO_DEVICE_PROVIDER_CLASS(klass);
  base_class->debug_category = gst_wasapi_proc_device_provider_debug;
  base_class->make_device = gst_wasapi_proc_device_new;
  base_class->make_watcher = make_watcher;
  base_class->list = list;

  gst_device_provider_class_set_static_metadata(
      GST_DEVICE_PROVIDER_CLASS(klass), "WASAPI process audio device provider",
      "Audio/Source/Application",
      "Lists the applications with an audio session on Windows, one device each (a child "
      "process shows as its parent of the same executable), live as they start, stop and end "
      "their sessions; each device's element is a wasapiprocsrc capturing that application's "
      "process tree",
      "procaudio developers <https://github.com/procaudio/procaudio>");
}

static void gst_wasapi_proc_device_provider_init(GstWasapiProcDeviceProvider *self) {
  self->managers = new std::shared_ptr<SessionManagerSource>();
  gst_proc_audio_device_provider_set_caps(
      GST_PROC_AUDIO_DEVICE_PROVIDER(self),
      procaudio::caps_for(procaudio::wasapi::WasapiBackend::supported_formats()));
}
