// SPDX-License-Identifier: LGPL-2.1-or-later
#include "gstscriptedprocsrc.h"

GST_DEBUG_CATEGORY_STATIC(gst_scripted_proc_src_debug);

struct _GstScriptedProcSrc {
  GstProcAudioSrc parent;
};

G_DEFINE_TYPE(GstScriptedProcSrc, gst_scripted_proc_src, GST_TYPE_PROC_AUDIO_SRC)

namespace {
constexpr const char *kScenarioKey = "procaudio-scenario";
using ScenarioRef = std::shared_ptr<procaudio::testing::Scenario>;

procaudio::CaptureBackend *create_backend(GstProcAudioSrc *self, const procaudio::Logger &) {
  auto *scenario = static_cast<ScenarioRef *>(g_object_get_data(G_OBJECT(self), kScenarioKey));
  return new procaudio::testing::ScriptedBackend(
      scenario != nullptr ? *scenario : std::make_shared<procaudio::testing::Scenario>());
}
}  // namespace

static void gst_scripted_proc_src_init(GstScriptedProcSrc *) {}

static void gst_scripted_proc_src_class_init(GstScriptedProcSrcClass *klass) {
  GstProcAudioSrcClass *src_class = GST_PROC_AUDIO_SRC_CLASS(klass);
  GST_DEBUG_CATEGORY_INIT(gst_scripted_proc_src_debug, "scriptedprocsrc", 0,
                          "Scripted process audio source (tests)");
  src_class->debug_category = gst_scripted_proc_src_debug;
  src_class->create_backend = create_backend;
  gst_proc_audio_src_class_set_formats(src_class, procaudio::FormatCaps{});
  gst_element_class_set_static_metadata(GST_ELEMENT_CLASS(klass), "Scripted process audio source",
                                        "Source/Audio", "Plays a test scenario (tests only)",
                                        "procaudio developers");
}

void gst_scripted_proc_src_register() {
  gst_element_register(nullptr, "scriptedprocsrc", GST_RANK_NONE, GST_TYPE_SCRIPTED_PROC_SRC);
}

void gst_scripted_proc_src_set_scenario(GstElement *element, ScenarioRef scenario) {
  g_object_set_data_full(G_OBJECT(element), kScenarioKey, new ScenarioRef(std::move(scenario)),
                         [](gpointer p) { delete static_cast<ScenarioRef *>(p); });
}
