// SPDX-License-Identifier: LGPL-2.1-or-later
#include "gstprocaudiodeviceprovider.h"

#include "app_devices.h"
#include "gstprocaudio-utils.h"

namespace {

// What start() to stop() keeps: the devices shown, and the watcher that tells them what
// changes. The watcher is stopped first: no event comes once it is, so the devices can go.
struct Monitor {
  Monitor(GstDeviceProvider *provider, GstCaps *caps, procaudio::DeviceFactory make)
      : devices(provider, caps, std::move(make)) {}
  ~Monitor() {
    if (watcher) {
      watcher->stop();
    }
  }

  procaudio::AppDevices devices;
  std::unique_ptr<procaudio::AppWatcher> watcher;
};

struct GstProcAudioDeviceProviderPrivate {
  GstCaps *caps;     // every device's; set at instance init
  Monitor *monitor;  // start() to stop()
};

GstDebugCategory *category_of(GObject *object) {
  return GST_PROC_AUDIO_DEVICE_PROVIDER_GET_CLASS(object)->debug_category;
}

}  // namespace

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE(GstProcAudioDeviceProvider, gst_proc_audio_device_provider,
                                    GST_TYPE_DEVICE_PROVIDER)

#define PRIV(self)                                  \
  static_cast<GstProcAudioDeviceProviderPrivate *>( \
      gst_proc_audio_device_provider_get_instance_private(GST_PROC_AUDIO_DEVICE_PROVIDER(self)))
#define KLASS(self) GST_PROC_AUDIO_DEVICE_PROVIDER_GET_CLASS(self)
#define CAT(self) (KLASS(self)->debug_category)

void gst_proc_audio_device_provider_set_caps(GstProcAudioDeviceProvider *self, GstCaps *caps) {
  gst_caps_replace(&PRIV(self)->caps, caps);
  gst_caps_unref(caps);
}

static GList *gst_proc_audio_device_provider_probe(GstDeviceProvider *provider) {
  auto *klass = KLASS(provider);
  std::vector<procaudio::Application> apps;
  const procaudio::CaptureError error =
      klass->list(GST_PROC_AUDIO_DEVICE_PROVIDER(provider),
                  procaudio::element_logger(G_OBJECT(provider), category_of), &apps);
  if (error) {
    GST_CAT_WARNING_OBJECT(CAT(provider), provider, "no applications listed: %s (%s)",
                           error.message.c_str(), error.detail.c_str());
    return nullptr;
  }
  return procaudio::devices_of(apps, PRIV(provider)->caps, klass->make_device);
}

static gboolean gst_proc_audio_device_provider_start(GstDeviceProvider *provider) {
  auto *klass = KLASS(provider);
  auto *priv = PRIV(provider);
  auto monitor = std::make_unique<Monitor>(provider, priv->caps, klass->make_device);
  monitor->watcher = klass->make_watcher(GST_PROC_AUDIO_DEVICE_PROVIDER(provider),
                                         procaudio::element_logger(G_OBJECT(provider), category_of),
                                         &monitor->devices);
  const procaudio::CaptureError error = monitor->watcher->start();
  if (error) {
    monitor->watcher.reset();  // not started: nothing to stop
    GST_CAT_WARNING_OBJECT(CAT(provider), provider, "cannot watch the applications: %s (%s)",
                           error.message.c_str(), error.detail.c_str());
    return FALSE;
  }
  priv->monitor = monitor.release();
  GST_CAT_DEBUG_OBJECT(CAT(provider), provider, "started: %zu application(s)",
                       priv->monitor->devices.size());
  return TRUE;
}

// The base class drops its own list of devices after this.
static void gst_proc_audio_device_provider_stop(GstDeviceProvider *provider) {
  auto *priv = PRIV(provider);
  delete priv->monitor;  // no event comes once it is gone
  priv->monitor = nullptr;
  GST_CAT_DEBUG_OBJECT(CAT(provider), provider, "stopped");
}

static void gst_proc_audio_device_provider_finalize(GObject *object) {
  auto *priv = PRIV(object);
  delete priv->monitor;
  priv->monitor = nullptr;
  gst_caps_replace(&priv->caps, nullptr);
  G_OBJECT_CLASS(gst_proc_audio_device_provider_parent_class)->finalize(object);
}

static void gst_proc_audio_device_provider_class_init(GstProcAudioDeviceProviderClass *klass) {
  G_OBJECT_CLASS(klass)->finalize = gst_proc_audio_device_provider_finalize;
  GstDeviceProviderClass *provider_class = GST_DEVICE_PROVIDER_CLASS(klass);
  provider_class->probe = gst_proc_audio_device_provider_probe;
  provider_class->start = gst_proc_audio_device_provider_start;
  provider_class->stop = gst_proc_audio_device_provider_stop;
}

static void gst_proc_audio_device_provider_init(GstProcAudioDeviceProvider *self) {
  PRIV(self)->caps = nullptr;
  PRIV(self)->monitor = nullptr;
}
