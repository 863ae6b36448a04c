// SPDX-License-Identifier: LGPL-2.1-or-later
// wasapiprocsrc: GstProcAudioSrc on the WASAPI process-loopback backend (Windows 10 2004+).
#pragma once

#include "procaudiosrc/gstprocaudiosrc.h"

G_BEGIN_DECLS
#define GST_TYPE_WASAPI_PROC_SRC (gst_wasapi_proc_src_get_type())
G_DECLARE_FINAL_TYPE(GstWasapiProcSrc, gst_wasapi_proc_src, GST, WASAPI_PROC_SRC, GstProcAudioSrc)
GST_ELEMENT_REGISTER_DECLARE(wasapiprocsrc);

G_END_DECLS

namespace procaudio {
// What the plugin calls (gst/plugin.cpp): registers wasapiprocsrc and
// wasapiprocdeviceprovider.
gboolean register_wasapi(GstPlugin *plugin);
}  // namespace procaudio
