// SPDX-License-Identifier: LGPL-2.1-or-later
// pipewireprocsrc: GstProcAudioSrc driving the PipeWire backend (Linux).
#pragma once

#include "procaudiosrc/gstprocaudiosrc.h"

G_BEGIN_DECLS

#define GST_TYPE_PIPEWIRE_PROC_SRC (gst_pipewire_proc_src_get_type())
G_DECLARE_FINAL_TYPE(GstPipeWireProcSrc, gst_pipewire_proc_src, GST, PIPEWIRE_PROC_SRC,
                     GstProcAudioSrc)

GST_ELEMENT_REGISTER_DECLARE(pipewireprocsrc);

G_END_DECLS

namespace procaudio {
// What the plugin calls (gst/plugin.cpp): registers pipewireprocsrc and
// pipewireprocdeviceprovider.
gboolean register_pipewire(GstPlugin *plugin);
}  // namespace procaudio
