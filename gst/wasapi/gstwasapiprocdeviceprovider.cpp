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
#include "procaudiosrc/app_devices.h"
#include "procaudiosrc/gstprocaudio-utils.h"
#include "session_managers.h"
#include "wasapi_backend.h"

GST_DEBUG_CATEGORY_STATIC(gst_wasapi_proc_device_provider_debug);
#define GST_CAT_DEFAULT gst_wasapi_proc_device_provider_debug

using procaudio::Application;
using procaudio::CaptureError;
using procaudio::wasapi::AppWatch;
using procaudio::wasapi::SessionManagerSource;

namespace {

GstDebugCategory *category_of(GObject *) {
  return gst_wasapi_proc_device_provider_debug;
}

// What start() to stop() keeps: the devices shown, and the watch that tells them what changes
// (stopped first: no event comes once it is).
struct Monitor {
  Monitor(GstDeviceProvider *p, GstCaps *caps, std::shared_ptr<SessionManagerSource> managers)
      : devices(p, caps, gst_wasapi_proc_device_new),
        watch(procaudio::element_logger(G_OBJECT(p), category_of), &devices, std::move(managers)) {}
  ~Monitor() { watch.stop(); }

  procaudio::AppDevices devices;
  AppWatch watch;
};

}  // namespace

struct _GstWasapiProcDeviceProvider {
  GstDeviceProvider parent;
  GstCaps *caps;     // what wasapiprocsrc captures: its pad template's caps
  Monitor *monitor;  // start() to stop()
  // Null: the system's render endpoints. A pointer, as the instance is C-allocated.
  std::shared_ptr<SessionManagerSource> *managers;
};

G_DEFINE_TYPE(GstWasapiProcDeviceProvider, gst_wasapi_proc_device_provider,
              GST_TYPE_DEVICE_PROVIDER)

void gst_wasapi_proc_device_provider_set_session_managers(
    GstWasapiProcDeviceProvider *provider, std::shared_ptr<SessionManagerSource> managers) {
  *provider->managers = std::move(managers);
}

static GList *gst_wasapi_proc_device_provider_probe(GstDeviceProvider *provider) {
  auto *self = GST_WASAPI_PROC_DEVICE_PROVIDER(provider);
  std::vector<Application> apps;
  const CaptureError error = AppWatch::list(
      procaudio::element_logger(G_OBJECT(provider), category_of), *self->managers, &apps);
  if (error) {
    GST_WARNING_OBJECT(self, "no applications listed: %s (%s)", error.message.c_str(),
                       error.detail.c_str());
    return nullptr;
  }
  return procaudio::devices_of(apps, self->caps, gst_wasapi_proc_device_new);
}

static gboolean gst_wasapi_proc_device_provider_start(GstDeviceProvider *provider) {
  auto *self = GST_WASAPI_PROC_DEVICE_PROVIDER(provider);
  auto monitor = std::make_unique<Monitor>(provider, self->caps, *self->managers);
  const CaptureError error = monitor->watch.start();
  if (error) {
    GST_WARNING_OBJECT(self, "cannot watch the applications: %s (%s)", error.message.c_str(),
                       error.detail.c_str());
    return FALSE;
  }
  self->monitor = monitor.release();
  GST_DEBUG_OBJECT(self, "started: %zu application(s) with audio sessions",
                   self->monitor->watch.applications().size());
  return TRUE;
}

// The base class drops its own list of devices after this.
static void gst_wasapi_proc_device_provider_stop(GstDeviceProvider *provider) {
  auto *self = GST_WASAPI_PROC_DEVICE_PROVIDER(provider);
  delete self->monitor;  // no event comes once it is gone
  self->monitor = nullptr;
  GST_DEBUG_OBJECT(self, "stopped");
}

static void gst_wasapi_proc_device_provider_finalize(GObject *object) {
  auto *self = GST_WASAPI_PROC_DEVICE_PROVIDER(object);
  delete self->monitor;
  self->monitor = nullptr;
  delete self->managers;
  self->managers = nullptr;
  gst_caps_unref(self->caps);
  G_OBJECT_CLASS(gst_wasapi_proc_device_provider_parent_class)->finalize(object);
}

static void gst_wasapi_proc_device_provider_class_init(GstWasapiProcDeviceProviderClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstDeviceProviderClass *provider_class = GST_DEVICE_PROVIDER_CLASS(klass);

  GST_DEBUG_CATEGORY_INIT(gst_wasapi_proc_device_provider_debug, "wasapiprocdeviceprovider", 0,
                          "WASAPI process audio device provider");

  gobject_class->finalize = gst_wasapi_proc_device_provider_finalize;
  provider_class->probe = gst_wasapi_proc_device_provider_probe;
  provider_class->start = gst_wasapi_proc_device_provider_start;
  provider_class->stop = gst_wasapi_proc_device_provider_stop;

  gst_device_provider_class_set_static_metadata(
      provider_class, "WASAPI process audio device provider", "Audio/Source/Application",
      "Lists the applications with an audio session on Windows, one device each (a child "
      "process shows as its parent of the same executable), live as they start, stop and end "
      "their sessions; each device's element is a wasapiprocsrc capturing that application's "
      "process tree",
      "procaudio developers <https://github.com/procaudio/procaudio>");
}

static void gst_wasapi_proc_device_provider_init(GstWasapiProcDeviceProvider *self) {
  self->caps = procaudio::caps_for(procaudio::wasapi::WasapiBackend::supported_formats());
  self->monitor = nullptr;
  self->managers = new std::shared_ptr<SessionManagerSource>();
}
