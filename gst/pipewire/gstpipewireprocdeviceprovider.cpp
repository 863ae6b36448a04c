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
#include "pipewire/pipewire_backend.h"
#include "pipewire/pw_app_watch.h"
#include "procaudiosrc/app_devices.h"
#include "procaudiosrc/gstprocaudio-utils.h"

GST_DEBUG_CATEGORY_STATIC(gst_pipewire_proc_device_provider_debug);
#define GST_CAT_DEFAULT gst_pipewire_proc_device_provider_debug

using procaudio::CaptureError;
using procaudio::pipewire::Application;
using procaudio::pipewire::AppWatch;

namespace {

GstDebugCategory *category_of(GObject *) {
  return gst_pipewire_proc_device_provider_debug;
}

// What start() to stop() keeps: the devices shown, and the watch that tells them what changes
// (stopped first: no event comes once it is).
struct Monitor {
  Monitor(GstDeviceProvider *p, GstCaps *caps)
      : devices(p, caps, gst_pipewire_proc_device_new),
        watch(procaudio::element_logger(G_OBJECT(p), category_of), &devices) {}
  ~Monitor() { watch.stop(); }

  procaudio::AppDevices devices;
  AppWatch watch;
};

}  // namespace

struct _GstPipeWireProcDeviceProvider {
  GstDeviceProvider parent;
  GstCaps *caps;     // what pipewireprocsrc captures: its pad template's caps
  Monitor *monitor;  // start() to stop()
};

G_DEFINE_TYPE(GstPipeWireProcDeviceProvider, gst_pipewire_proc_device_provider,
              GST_TYPE_DEVICE_PROVIDER)

static GList *gst_pipewire_proc_device_provider_probe(GstDeviceProvider *provider) {
  auto *self = GST_PIPEWIRE_PROC_DEVICE_PROVIDER(provider);
  std::vector<Application> apps;
  const CaptureError error =
      AppWatch::list(procaudio::element_logger(G_OBJECT(provider), category_of), &apps);
  if (error) {
    GST_WARNING_OBJECT(self, "no applications listed: %s (%s)", error.message.c_str(),
                       error.detail.c_str());
    return nullptr;
  }
  return procaudio::devices_of(apps, self->caps, gst_pipewire_proc_device_new);
}

static gboolean gst_pipewire_proc_device_provider_start(GstDeviceProvider *provider) {
  auto *self = GST_PIPEWIRE_PROC_DEVICE_PROVIDER(provider);
  auto monitor = std::make_unique<Monitor>(provider, self->caps);
  const CaptureError error = monitor->watch.start();
  if (error) {
    GST_WARNING_OBJECT(self, "cannot watch the applications: %s (%s)", error.message.c_str(),
                       error.detail.c_str());
    return FALSE;
  }
  self->monitor = monitor.release();
  GST_DEBUG_OBJECT(self, "started: %zu application(s) playing", self->monitor->devices.size());
  return TRUE;
}

// The base class drops its own list of devices after this.
static void gst_pipewire_proc_device_provider_stop(GstDeviceProvider *provider) {
  auto *self = GST_PIPEWIRE_PROC_DEVICE_PROVIDER(provider);
  delete self->monitor;  // no event comes once it is gone
  self->monitor = nullptr;
  GST_DEBUG_OBJECT(self, "stopped");
}

static void gst_pipewire_proc_device_provider_finalize(GObject *object) {
  auto *self = GST_PIPEWIRE_PROC_DEVICE_PROVIDER(object);
  delete self->monitor;
  self->monitor = nullptr;
  gst_caps_unref(self->caps);
  G_OBJECT_CLASS(gst_pipewire_proc_device_provider_parent_class)->finalize(object);
}

static void gst_pipewire_proc_device_provider_class_init(
    GstPipeWireProcDeviceProviderClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstDeviceProviderClass *provider_class = GST_DEVICE_PROVIDER_CLASS(klass);

  GST_DEBUG_CATEGORY_INIT(gst_pipewire_proc_device_provider_debug, "pipewireprocdeviceprovider", 0,
                          "PipeWire process audio device provider");

  gobject_class->finalize = gst_pipewire_proc_device_provider_finalize;
  provider_class->probe = gst_pipewire_proc_device_provider_probe;
  provider_class->start = gst_pipewire_proc_device_provider_start;
  provider_class->stop = gst_pipewire_proc_device_provider_stop;

  gst_device_provider_class_set_static_metadata(
      provider_class, "PipeWire process audio device provider", "Audio/Source/Application",
      "Lists the applications playing audio through PipeWire, one device each (a child process "
      "shows as its parent of the same executable), live as they start, pause and stop "
      "playing; each device's element is a pipewireprocsrc capturing that application's "
      "process tree",
      "procaudio developers <https://github.com/procaudio/procaudio>");
}

static void gst_pipewire_proc_device_provider_init(GstPipeWireProcDeviceProvider *self) {
  self->caps = procaudio::caps_for(procaudio::PipeWireBackend::supported_formats());
  self->monitor = nullptr;
}
