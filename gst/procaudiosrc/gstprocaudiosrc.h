// SPDX-License-Identifier: LGPL-2.1-or-later
// GstProcAudioSrc: the abstract live GstPushSrc that wasapiprocsrc and pipewireprocsrc share.
// A subclass only says which backend to drive, its metadata and its debug category.
#pragma once

#include <gst/base/gstpushsrc.h>
#include <gst/gst.h>

#include "core/capture_backend.h"
#include "core/logger.h"

G_BEGIN_DECLS

#define GST_TYPE_PROC_AUDIO_SRC (gst_proc_audio_src_get_type())
G_DECLARE_DERIVABLE_TYPE(GstProcAudioSrc, gst_proc_audio_src, GST, PROC_AUDIO_SRC, GstPushSrc)

#define GST_TYPE_PROC_AUDIO_MODE (gst_proc_audio_mode_get_type())
GType gst_proc_audio_mode_get_type(void);
#define GST_TYPE_PROC_AUDIO_ON_TARGET_EXIT (gst_proc_audio_on_target_exit_get_type())
GType gst_proc_audio_on_target_exit_get_type(void);

struct _GstProcAudioSrcClass {
  GstPushSrcClass parent_class;

  // Makes the backend this element drives, once per READY->PAUSED. `logger` routes the
  // backend's lines into the subclass's debug category.
  procaudio::CaptureBackend *(*create_backend)(GstProcAudioSrc *self,
                                               const procaudio::Logger &logger);

  // The subclass's debug category (set in class_init); the base logs into it too.
  GstDebugCategory *debug_category;
};

G_END_DECLS

// For a subclass's class_init: the formats its backend captures become the src pad template
// (interleaved F32LE/S16LE; fixated to the backend's preferred_format() when downstream does
// not care).
void gst_proc_audio_src_class_set_formats(GstProcAudioSrcClass *klass,
                                          const procaudio::FormatCaps &formats);
