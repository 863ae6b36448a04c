// pipewireprocsrc: GstProcAudioSrc driving the PipeWire backend (Linux).
#pragma once

#include "procaudiosrc/gstprocaudiosrc.h"

G_BEGIN_DECLS

#define GST_TYPE_PIPEWIRE_PROC_SRC (gst_pipewire_proc_src_get_type())
G_DECLARE_FINAL_TYPE(GstPipeWireProcSrc, gst_pipewire_proc_src, GST, PIPEWIRE_PROC_SRC,
                     GstProcAudioSrc)

G_END_DECLS
