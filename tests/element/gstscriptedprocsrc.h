// SPDX-License-Identifier: LGPL-2.1-or-later
// scriptedprocsrc: GstProcAudioSrc driven by a ScriptedBackend; registered by the tests only.
#pragma once

#include <memory>

#include "procaudiosrc/gstprocaudiosrc.h"
#include "scripted_backend.h"

G_BEGIN_DECLS
#define GST_TYPE_SCRIPTED_PROC_SRC (gst_scripted_proc_src_get_type())
G_DECLARE_FINAL_TYPE(GstScriptedProcSrc, gst_scripted_proc_src, GST, SCRIPTED_PROC_SRC,
                     GstProcAudioSrc)
G_END_DECLS

// Registers "scriptedprocsrc" with the registry (no plugin).
void gst_scripted_proc_src_register();

// The scenario the element's next backend plays; the element keeps a reference.
void gst_scripted_proc_src_set_scenario(GstElement *element,
                                        std::shared_ptr<procaudio::testing::Scenario> scenario);
