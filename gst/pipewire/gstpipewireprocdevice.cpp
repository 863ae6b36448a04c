// SPDX-License-Identifier: LGPL-2.1-or-later
// One application as a GstDevice. Its element is a pipewireprocsrc on the application's root
// process with include-tree, so every stream of the group the provider showed (a child's
// too) is captured, and a stream it opens later as well.
#include "gstpipewireprocdevice.h"

#include "gstpipewireprocsrc.h"

struct _GstPipeWireProcDevice {
  GstDevice parent;
  guint pid;  // the application's root
};

G_DEFINE_TYPE(GstPipeWireProcDevice, gst_pipewire_proc_device, GST_TYPE_DEVICE)

// pid and mode are set, process-name cleared: the element takes one of pid and process-name,
// and a name would pick the oldest process of that name, which may be another instance.
static void configure(GstPipeWireProcDevice *self, GstElement *element) {
  g_object_set(element, "process-name", nullptr, "pid", static_cast<gint>(self->pid), nullptr);
  gst_util_set_object_arg(G_OBJECT(element), "mode", "include-tree");
}

static GstElement *gst_pipewire_proc_device_create_element(GstDevice *device, const gchar *name) {
  GstElement *element = gst_element_factory_make("pipewireprocsrc", name);
  if (element != nullptr) {
    configure(GST_PIPEWIRE_PROC_DEVICE(device), element);
  }
  return element;
}

// Only a pipewireprocsrc can be pointed at another application; its target is read when it
// goes to PAUSED, so a running one captures the new application from its next start.
static gboolean gst_pipewire_proc_device_reconfigure_element(GstDevice *device,
                                                             GstElement *element) {
  if (!GST_IS_PIPEWIRE_PROC_SRC(element)) {
    return FALSE;
  }
  configure(GST_PIPEWIRE_PROC_DEVICE(device), element);
  return TRUE;
}

static void gst_pipewire_proc_device_class_init(GstPipeWireProcDeviceClass *klass) {
  GstDeviceClass *device_class = GST_DEVICE_CLASS(klass);
  device_class->create_element = gst_pipewire_proc_device_create_element;
  device_class->reconfigure_element = gst_pipewire_proc_device_reconfigure_element;
}

static void gst_pipewire_proc_device_init(GstPipeWireProcDevice *self) {}

GstDevice *gst_pipewire_proc_device_new(const procaudio::pipewire::Application &app,
                                        GstCaps *caps) {
  // application-name falls back to the executable's name, as the display name does, so that
  // the field always names the application.
  const std::string &app_name = app.app_name.empty() ? app.process_name : app.app_name;
  GstStructure *props = gst_structure_new(
      "procaudio-application", "device.api", G_TYPE_STRING, "pipewire", "procaudio.pid",
      G_TYPE_UINT, app.pid, "procaudio.process-name", G_TYPE_STRING, app.process_name.c_str(),
      "procaudio.application-name", G_TYPE_STRING, app_name.c_str(), "procaudio.playing",
      G_TYPE_BOOLEAN, app.playing ? TRUE : FALSE, "procaudio.streams", G_TYPE_UINT, app.streams,
      nullptr);
  if (!app.app_id.empty()) {
    gst_structure_set(props, "procaudio.app-id", G_TYPE_STRING, app.app_id.c_str(), nullptr);
  }
  auto *device = static_cast<GstPipeWireProcDevice *>(
      g_object_new(GST_TYPE_PIPEWIRE_PROC_DEVICE, "display-name", app.display_name.c_str(), "caps",
                   caps, "device-class", "Audio/Source/Application", "properties", props, nullptr));
  gst_structure_free(props);
  device->pid = app.pid;
  return GST_DEVICE(device);
}
