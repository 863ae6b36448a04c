// SPDX-License-Identifier: LGPL-2.1-or-later
// The real plugin DLL under GStreamer (cross-built, run under wine): wasapiprocsrc is
// registered with its properties and caps, and a real pipeline fails READY->PAUSED with
// errors a person can act on: "no such process" for a pid that does not exist and, under
// wine (no process loopback), "process loopback unavailable" carrying 0x80070002.
#include <windows.h>
// (windows.h first)
#include <gst/app/gstappsink.h>
#include <gst/base/gstbasesrc.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "test_support.h"
#include "wasapi/com_thread.h"
#include "wasapi/endpoints.h"
#include "wasapi/process_util.h"

namespace {

using procaudio::wasapi::testing::executable_stem;
using procaudio::wasapi::testing::running_under_wine;
using procaudio::wasapi::testing::to_upper;
using procaudio::wasapi::testing::unused_pid;

// The plugin DLL meson built (PROCAUDIO_PLUGIN); a /unix/path under wine is Z:/unix/path.
std::string plugin_path() {
  const char *env = std::getenv("PROCAUDIO_PLUGIN");
  std::string path = env != nullptr ? env : "";
  if (!path.empty() && path[0] == '/') {
    path = "Z:" + path;
  }
  return path;
}

GstPlugin *load_plugin() {
  GError *error = nullptr;
  GstPlugin *plugin = gst_plugin_load_file(plugin_path().c_str(), &error);
  if (plugin == nullptr) {
    ADD_FAILURE() << "gst_plugin_load_file(" << plugin_path()
                  << "): " << (error != nullptr ? error->message : "?");
    g_clear_error(&error);
  }
  return plugin;
}

struct BusError {
  bool posted = false;
  GQuark domain = 0;
  int code = 0;
  std::string message;
  std::string debug;
  std::string source;
};

// Sets `description` to PAUSED, expects the change to fail, returns the error it posted.
BusError pause_and_expect_failure(const std::string &description) {
  BusError out;
  GError *parse_error = nullptr;
  GstElement *pipeline = gst_parse_launch(description.c_str(), &parse_error);
  if (pipeline == nullptr) {
    ADD_FAILURE() << description << ": " << (parse_error ? parse_error->message : "?");
    g_clear_error(&parse_error);
    return out;
  }
  EXPECT_EQ(gst_element_set_state(pipeline, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE)
      << description;
  GstBus *bus = gst_element_get_bus(pipeline);
  GstMessage *message = gst_bus_timed_pop_filtered(bus, 10 * GST_SECOND, GST_MESSAGE_ERROR);
  if (message != nullptr) {
    GError *error = nullptr;
    gchar *debug = nullptr;
    gst_message_parse_error(message, &error, &debug);
    out.posted = true;
    out.domain = error->domain;
    out.code = error->code;
    out.message = error->message;
    out.debug = debug != nullptr ? debug : "";
    out.source = GST_OBJECT_NAME(GST_MESSAGE_SRC(message));
    g_error_free(error);
    g_free(debug);
    gst_message_unref(message);
  }
  gst_object_unref(bus);
  EXPECT_EQ(gst_element_set_state(pipeline, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  gst_object_unref(pipeline);
  return out;
}

class WasapiElement : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { plugin_ = load_plugin(); }
  static void TearDownTestSuite() {
    if (plugin_ != nullptr) {
      gst_object_unref(plugin_);
    }
  }
  void SetUp() override { ASSERT_NE(plugin_, nullptr); }
  static GstPlugin *plugin_;
};
GstPlugin *WasapiElement::plugin_ = nullptr;

TEST_F(WasapiElement, PluginRegistersTheElement) {
  EXPECT_STREQ(gst_plugin_get_name(plugin_), "procaudio");
  GstElementFactory *factory = gst_element_factory_find("wasapiprocsrc");
  ASSERT_NE(factory, nullptr);
  EXPECT_EQ(gst_plugin_feature_get_rank(GST_PLUGIN_FEATURE(factory)),
            static_cast<guint>(GST_RANK_NONE));
  EXPECT_STREQ(gst_element_factory_get_metadata(factory, GST_ELEMENT_METADATA_KLASS),
               "Source/Audio");
  GstElement *element = gst_element_factory_create(factory, "src");
  ASSERT_NE(element, nullptr);
  EXPECT_STREQ(G_OBJECT_TYPE_NAME(element), "GstWasapiProcSrc");
  EXPECT_TRUE(GST_IS_BASE_SRC(element));
  gst_object_unref(element);
  gst_object_unref(factory);
}

TEST_F(WasapiElement, Properties) {
  GstElement *element = gst_element_factory_make("wasapiprocsrc", nullptr);
  ASSERT_NE(element, nullptr);
  GObjectClass *klass = G_OBJECT_GET_CLASS(element);
  struct Expected {
    const char *name;
    GType type;
  } expected[] = {
      {"pid", G_TYPE_INT},
      {"process-name", G_TYPE_STRING},
      {"latency-time", G_TYPE_INT64},
      {"buffer-time", G_TYPE_INT64},
      {"stats", GST_TYPE_STRUCTURE},
  };
  for (const Expected &e : expected) {
    GParamSpec *spec = g_object_class_find_property(klass, e.name);
    ASSERT_NE(spec, nullptr) << e.name;
    EXPECT_EQ(G_PARAM_SPEC_VALUE_TYPE(spec), e.type) << e.name;
  }
  GParamSpec *mode = g_object_class_find_property(klass, "mode");
  ASSERT_NE(mode, nullptr);
  EXPECT_TRUE(G_IS_PARAM_SPEC_ENUM(mode));

  gint pid = 99;  // signed: a negative pid reaches the element and fails its start
  gchar *name = nullptr;
  gint64 latency = 0, buffer = 0;
  GstStructure *stats = nullptr;
  g_object_get(element, "pid", &pid, "process-name", &name, "latency-time", &latency, "buffer-time",
               &buffer, "stats", &stats, nullptr);
  EXPECT_EQ(pid, 0);
  EXPECT_EQ(name, nullptr);
  EXPECT_EQ(latency, 10000);
  EXPECT_EQ(buffer, 200000);
  ASSERT_NE(stats, nullptr);
  EXPECT_TRUE(gst_structure_has_field(stats, "frames-captured"));
  gst_structure_free(stats);
  gst_util_set_object_arg(G_OBJECT(element), "mode", "exclude-tree");
  g_object_set(element, "process-name", "chrome.exe", nullptr);
  g_object_get(element, "process-name", &name, nullptr);
  EXPECT_STREQ(name, "chrome.exe");
  g_free(name);
  gst_object_unref(element);
}

TEST_F(WasapiElement, PadTemplateHasTheSafeFormats) {
  GstElementFactory *factory = gst_element_factory_find("wasapiprocsrc");
  ASSERT_NE(factory, nullptr);
  GstCaps *caps = nullptr;
  for (const GList *l = gst_element_factory_get_static_pad_templates(factory); l; l = l->next) {
    auto *templ = static_cast<GstStaticPadTemplate *>(l->data);
    if (templ->direction == GST_PAD_SRC) {
      caps = gst_static_caps_get(&templ->static_caps);
    }
  }
  ASSERT_NE(caps, nullptr);
  GstCaps *expected = gst_caps_from_string(
      "audio/x-raw, format=(string)F32LE, layout=(string)interleaved, "
      "rate=(int){ 44100, 48000 }, channels=(int)[ 1, 2 ]; "
      "audio/x-raw, format=(string)S16LE, layout=(string)interleaved, "
      "rate=(int){ 44100, 48000 }, channels=(int)[ 1, 2 ]");
  EXPECT_TRUE(gst_caps_is_equal(caps, expected)) << gst_caps_to_string(caps);
  gst_caps_unref(expected);
  gst_caps_unref(caps);
  gst_object_unref(factory);
}

TEST_F(WasapiElement, PidOfNoProcessFailsWithNoSuchProcess) {
  const uint32_t pid = unused_pid();
  procaudio::wasapi::UniqueHandle probe;
  ASSERT_EQ(procaudio::wasapi::open_process(pid, probe).kind, procaudio::ErrorKind::kNotFound);
  const BusError error =
      pause_and_expect_failure("wasapiprocsrc name=src pid=" + std::to_string(pid) + " ! fakesink");
  ASSERT_TRUE(error.posted);
  EXPECT_EQ(error.source, "src");
  EXPECT_EQ(error.domain, GST_RESOURCE_ERROR);
  EXPECT_EQ(error.code, GST_RESOURCE_ERROR_NOT_FOUND);
  EXPECT_NE(error.message.find("no such process"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find(std::to_string(pid)), std::string::npos) << error.message;
  EXPECT_NE(error.debug.find("OpenProcess"), std::string::npos) << error.debug;
}

TEST_F(WasapiElement, ProcessNameOfNoProcessFailsWithNoSuchProcess) {
  const BusError error = pause_and_expect_failure(
      "wasapiprocsrc name=src process-name=no-such-program-procaudio.exe ! fakesink");
  ASSERT_TRUE(error.posted);
  EXPECT_EQ(error.domain, GST_RESOURCE_ERROR);
  EXPECT_EQ(error.code, GST_RESOURCE_ERROR_NOT_FOUND);
  EXPECT_NE(error.message.find("no such process"), std::string::npos) << error.message;
}

TEST_F(WasapiElement, LiveProcessUnderWineFailsWithProcessLoopbackUnavailable) {
  if (!running_under_wine()) {
    GTEST_SKIP() << "wine only: Windows 10 2004+ has process loopback";
  }
  const BusError error = pause_and_expect_failure(
      "wasapiprocsrc name=src pid=" + std::to_string(GetCurrentProcessId()) + " ! fakesink");
  ASSERT_TRUE(error.posted);
  EXPECT_EQ(error.source, "src");
  EXPECT_EQ(error.domain, GST_RESOURCE_ERROR);
  EXPECT_EQ(error.code, GST_RESOURCE_ERROR_OPEN_READ);
  EXPECT_NE(error.message.find("process loopback unavailable"), std::string::npos) << error.message;
  EXPECT_NE(error.debug.find("0x80070002"), std::string::npos) << error.debug;
}

TEST_F(WasapiElement, ProcessNameIsResolvedBeforeActivation) {
  if (!running_under_wine()) {
    GTEST_SKIP() << "wine only: Windows 10 2004+ has process loopback";
  }
  // This test's own executable, by name in another case and without ".exe": resolved, so
  // the failure is the activation's, not "no such process".
  const BusError error = pause_and_expect_failure(
      "wasapiprocsrc name=src process-name=" + to_upper(executable_stem()) + " ! fakesink");
  ASSERT_TRUE(error.posted);
  EXPECT_EQ(error.code, GST_RESOURCE_ERROR_OPEN_READ) << error.message;
  EXPECT_NE(error.message.find("process loopback unavailable"), std::string::npos) << error.message;
}

TEST_F(WasapiElement, FollowingANameNotRunningWaitsWithGapSilence) {
  // Where Windows reports audio sessions (or, under wine here, there is no output device
  // whose session manager could refuse), on-target-exit=wait for a name nobody runs is a
  // live stream of GAP silence and a "waiting" message. Where wine's session manager is
  // asked (an output device exists), it refuses with E_NOTIMPL and the element says so.
  const std::string name = "procaudio-nobody-" + std::to_string(GetCurrentProcessId());
  const std::string description = "wasapiprocsrc name=src process-name=" + name +
                                  " on-target-exit=wait ! appsink name=sink sync=false";
  uint32_t mix_rate = 0;
  const bool have_output = !procaudio::wasapi::run_on_mta_thread(
      [&mix_rate] { return procaudio::wasapi::default_render_mix_rate(mix_rate); });
  if (running_under_wine() && have_output) {
    const BusError error = pause_and_expect_failure(description);
    ASSERT_TRUE(error.posted);
    EXPECT_EQ(error.code, GST_RESOURCE_ERROR_OPEN_READ);
    EXPECT_NE(error.message.find("on-target-exit=wait"), std::string::npos) << error.message;
    EXPECT_NE(error.debug.find("E_NOTIMPL"), std::string::npos) << error.debug;
    return;
  }
  GstElement *pipeline = gst_parse_launch(description.c_str(), nullptr);
  ASSERT_NE(pipeline, nullptr);
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  ASSERT_NE(gst_element_set_state(pipeline, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  GstClockTime next = GST_CLOCK_TIME_NONE;
  for (int i = 0; i < 5; ++i) {
    GstSample *sample = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 5 * GST_SECOND);
    ASSERT_NE(sample, nullptr) << "no buffer " << i << " within 5 s";
    GstBuffer *buffer = gst_sample_get_buffer(sample);
    EXPECT_TRUE(GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_GAP)) << "buffer " << i;
    if (GST_CLOCK_TIME_IS_VALID(next)) {
      EXPECT_EQ(GST_BUFFER_PTS(buffer), next) << "buffer " << i;
    }
    next = GST_BUFFER_PTS(buffer) + GST_BUFFER_DURATION(buffer);
    gst_sample_unref(sample);
  }
  GstBus *bus = gst_element_get_bus(pipeline);
  GstMessage *message = nullptr;
  for (;;) {
    message = gst_bus_timed_pop_filtered(bus, 5 * GST_SECOND, GST_MESSAGE_ELEMENT);
    if (message == nullptr || gst_message_has_name(message, "procaudio-target")) {
      break;
    }
    gst_message_unref(message);
  }
  ASSERT_NE(message, nullptr) << "no procaudio-target message";
  const GstStructure *s = gst_message_get_structure(message);
  EXPECT_STREQ(gst_structure_get_string(s, "state"), "waiting");
  EXPECT_STREQ(gst_structure_get_string(s, "process-name"), name.c_str());
  guint pid = 1, streams = 1;
  EXPECT_TRUE(gst_structure_get_uint(s, "pid", &pid));
  EXPECT_TRUE(gst_structure_get_uint(s, "streams", &streams));
  EXPECT_EQ(pid, 0u);
  EXPECT_EQ(streams, 0u);
  gst_message_unref(message);
  gst_object_unref(bus);
  EXPECT_EQ(gst_element_set_state(pipeline, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
}

TEST_F(WasapiElement, WaitWithAPidIsASettingsError) {
  const BusError error = pause_and_expect_failure(
      "wasapiprocsrc name=src pid=" + std::to_string(GetCurrentProcessId()) +
      " on-target-exit=wait ! fakesink");
  ASSERT_TRUE(error.posted);
  EXPECT_EQ(error.domain, GST_RESOURCE_ERROR);
  EXPECT_EQ(error.code, GST_RESOURCE_ERROR_SETTINGS);
  EXPECT_NE(error.message.find("set process-name instead of pid"), std::string::npos)
      << error.message;
}

TEST_F(WasapiElement, NoTargetFailsClosed) {
  const BusError error = pause_and_expect_failure("wasapiprocsrc name=src ! fakesink");
  ASSERT_TRUE(error.posted);
  EXPECT_EQ(error.code, GST_RESOURCE_ERROR_SETTINGS);
  EXPECT_NE(error.message.find("No target to capture"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("mode=exclude-tree"), std::string::npos) << error.message;
}

TEST_F(WasapiElement, FailedStartCanBeRetried) {
  GstElement *element = gst_element_factory_make("wasapiprocsrc", nullptr);
  ASSERT_NE(element, nullptr);
  g_object_set(element, "pid", static_cast<gint>(unused_pid()), nullptr);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(gst_element_set_state(element, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
    EXPECT_EQ(gst_element_set_state(element, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  }
  gst_object_unref(element);
}

}  // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  const int result = RUN_ALL_TESTS();
  gst_deinit();
  return result;
}
