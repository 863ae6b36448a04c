// SPDX-License-Identifier: LGPL-2.1-or-later
// GstProcAudioSrc's properties, bad input and caps through the scripted backend: defaults,
// the fail-closed rule, refused values and combinations (each a clear error at READY->PAUSED),
// and the caps negotiated with downstream. main() is test_element.cpp's.
#include <gst/app/gstappsink.h>
#include <gst/audio/audio.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "capture_fixture.h"
#include "gstscriptedprocsrc.h"

using procaudio::CaptureError;
using procaudio::ErrorKind;
using procaudio::testing::Scenario;

using namespace element_testing;  // the fixture is these tests' vocabulary

// ---- Properties and bad input ----

TEST(Properties, DefaultsMatchTheDesign) {
  GstElement *src = gst_element_factory_make("scriptedprocsrc", nullptr);
  ASSERT_NE(src, nullptr);
  gint pid = 99;
  gchar *name = nullptr;
  gint mode = -1, on_exit = -1;
  gboolean reference = TRUE;
  gint64 latency = 0, buffer = 0;
  g_object_get(src, "pid", &pid, "process-name", &name, "mode", &mode, "on-target-exit", &on_exit,
               "reference-timestamp", &reference, "latency-time", &latency, "buffer-time", &buffer,
               nullptr);
  EXPECT_EQ(pid, 0);
  EXPECT_EQ(name, nullptr);
  EXPECT_EQ(mode, 0);     // include-tree
  EXPECT_EQ(on_exit, 0);  // eos
  EXPECT_FALSE(reference);
  EXPECT_EQ(latency, 10000);
  EXPECT_EQ(buffer, 200000);
  for (const auto &[prop, nicks] : std::vector<std::pair<const char *, std::vector<const char *>>>{
           {"mode", {"include-tree", "exclude-tree"}}, {"on-target-exit", {"eos", "wait"}}}) {
    GParamSpec *spec = g_object_class_find_property(G_OBJECT_GET_CLASS(src), prop);
    ASSERT_NE(spec, nullptr) << prop;
    GEnumClass *values = G_ENUM_CLASS(g_type_class_ref(spec->value_type));
    for (const char *nick : nicks) {
      EXPECT_NE(g_enum_get_value_by_nick(values, nick), nullptr) << prop << " " << nick;
    }
    g_type_class_unref(values);
  }
  for (const char *prop : {"pid", "process-name", "mode", "on-target-exit", "reference-timestamp",
                           "latency-time", "buffer-time", "stats"}) {
    GParamSpec *p = g_object_class_find_property(G_OBJECT_GET_CLASS(src), prop);
    ASSERT_NE(p, nullptr) << prop;
    EXPECT_GT(strlen(g_param_spec_get_blurb(p)), 40u) << prop << ": a blurb a user can act on";
  }
  gst_object_unref(src);
}

TEST(Properties, NoTargetFailsClosedAndSaysHowToNameOne) {
  // Nothing set (the default mode, or include-tree said explicitly): never "everything".
  for (const std::string props : {"mode=include-tree", "pid=0"}) {
    auto s = scenario();
    WarningCatcher warnings;
    Capture c(s, "", props);
    EXPECT_EQ(c.set_state(GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE) << props;
    const ErrorInfo e = wait_error(c);
    ASSERT_TRUE(e.found) << props;
    EXPECT_EQ(e.domain, GST_RESOURCE_ERROR);
    EXPECT_EQ(e.code, GST_RESOURCE_ERROR_SETTINGS);
    EXPECT_TRUE(contains(e.message, "process-name") && contains(e.message, "mode=exclude-tree"))
        << e.message;
    EXPECT_EQ(s->opens(), 0) << props << ": the backend was never asked";
  }
  // exclude-tree with neither: everything except this process, as documented.
  auto s = scenario();
  s->packets(1, {480}).exit();
  Capture c(s, "", "mode=exclude-tree");
  ASSERT_NE(c.set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  c.pull();
  EXPECT_EQ(s->opens(), 1);
  EXPECT_FALSE(s->opened_target().has_target());
}

TEST(Properties, AValueGivenButUnusableFailsRatherThanReadingAsNone) {
  // With exclude-tree, "none" is every process but this one: a negative pid or an empty name
  // must fail the start, in either mode, before the backend is asked.
  const std::pair<const char *, const char *> cases[] = {
      {"pid=-5", "pid -5 is not a process id"},
      {"pid=-5 mode=exclude-tree", "pid -5 is not a process id"},
      {"process-name=\"\"", "process-name is empty"},
      {"process-name=\"\" mode=exclude-tree", "process-name is empty"},
  };
  for (const auto &[props, words] : cases) {
    auto s = scenario();
    Capture c(s, "", props);
    EXPECT_EQ(c.set_state(GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE) << props;
    const ErrorInfo e = wait_error(c);
    ASSERT_TRUE(e.found) << props;
    EXPECT_EQ(e.code, GST_RESOURCE_ERROR_SETTINGS) << props;
    EXPECT_TRUE(contains(e.message, words)) << props << ": " << e.message;
    EXPECT_EQ(s->opens(), 0) << props << ": the backend was never asked";
  }
}

TEST(Properties, WaitingNeedsAProcessNameAndIncludeTree) {
  struct Case {
    const char *props;
    const char *says;
  } cases[] = {
      {"pid=4242 on-target-exit=wait", "process-name"},
      {"process-name=zoom mode=exclude-tree on-target-exit=wait", "include-tree"},
  };
  for (const Case &k : cases) {
    auto s = scenario();
    Capture c(s, "", k.props);
    EXPECT_EQ(c.set_state(GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE) << k.props;
    const ErrorInfo e = wait_error(c);
    ASSERT_TRUE(e.found) << k.props;
    EXPECT_EQ(e.code, GST_RESOURCE_ERROR_SETTINGS) << k.props;
    EXPECT_TRUE(contains(e.message, k.says)) << e.message;
    EXPECT_EQ(s->opens(), 0);
  }
  auto s = scenario();
  s->packets(1, {480}).exit();
  Capture c(s, "", "process-name=zoom on-target-exit=wait");
  ASSERT_NE(c.set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  c.pull();
  EXPECT_TRUE(s->opened_target().follows());
  EXPECT_EQ(s->opened_target().process_name, "zoom");
}

TEST(Properties, NegativeOrZeroTimesAreRefusedLoudlyAndChangeNothing) {
  Capture c(scenario());
  g_object_set(c.src(), "latency-time", G_GINT64_CONSTANT(20000), "buffer-time",
               G_GINT64_CONSTANT(300000), nullptr);
  WarningCatcher warnings;
  for (gint64 bad : {G_GINT64_CONSTANT(-5), G_GINT64_CONSTANT(0)}) {
    g_object_set(c.src(), "latency-time", bad, nullptr);
    std::string said = warnings.take();
    EXPECT_TRUE(contains(said, "latency-time")) << said;
    EXPECT_TRUE(contains(said, "out of range")) << said;
    g_object_set(c.src(), "buffer-time", bad, nullptr);
    said = warnings.take();
    EXPECT_TRUE(contains(said, "buffer-time")) << said;
  }
  gint64 latency = 0, buffer = 0;
  g_object_get(c.src(), "latency-time", &latency, "buffer-time", &buffer, nullptr);
  EXPECT_EQ(latency, 20000);
  EXPECT_EQ(buffer, 300000);
}

TEST(Properties, BufferTimeShorterThanLatencyTimeFailsStartWithAClearError) {
  auto s = scenario();
  Capture c(s, "", "latency-time=20000 buffer-time=5000");
  EXPECT_EQ(c.set_state(GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  const ErrorInfo e = wait_error(c);
  ASSERT_TRUE(e.found);
  EXPECT_EQ(e.domain, GST_RESOURCE_ERROR);
  EXPECT_EQ(e.code, GST_RESOURCE_ERROR_SETTINGS);
  EXPECT_TRUE(contains(e.message, "buffer-time (5000 us)")) << e.message;
  EXPECT_TRUE(contains(e.message, "latency-time (20000 us)")) << e.message;
  EXPECT_EQ(s->opens(), 0) << "nothing else happens";
  gint64 buffer = 0;
  g_object_get(c.src(), "buffer-time", &buffer, nullptr);
  EXPECT_EQ(buffer, 5000);
}

TEST(Properties, PidAndProcessNameTogetherFailStartWithAClearError) {
  auto s = scenario();
  Capture c(s, "", "pid=4242 process-name=firefox");
  EXPECT_EQ(c.set_state(GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  const ErrorInfo e = wait_error(c);
  ASSERT_TRUE(e.found);
  EXPECT_EQ(e.code, GST_RESOURCE_ERROR_SETTINGS);
  EXPECT_TRUE(contains(e.message, "4242") && contains(e.message, "firefox")) << e.message;
  EXPECT_EQ(s->opens(), 0);
}

TEST(Properties, ABackendRefusingTheTargetFailsReadyToPausedWithItsError) {
  auto s = scenario();
  s->open_error = {ErrorKind::kNotFound, "No process with pid 4242 is running.",
                   "kill(4242, 0): No such process (ESRCH)"};
  Capture c(s, "", "pid=4242");
  EXPECT_EQ(c.set_state(GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  const ErrorInfo e = wait_error(c);
  ASSERT_TRUE(e.found);
  EXPECT_EQ(e.domain, GST_RESOURCE_ERROR);
  EXPECT_EQ(e.code, GST_RESOURCE_ERROR_NOT_FOUND);
  EXPECT_EQ(e.message, "No process with pid 4242 is running.");
  EXPECT_TRUE(contains(e.debug, "ESRCH")) << e.debug;
  EXPECT_EQ(s->opened_target().pid, 4242u);
}

TEST(Properties, ChangingTheTargetWhileRunningIsRefused) {
  auto s = scenario();
  s->hold();
  Capture c(s, "", "pid=10");
  ASSERT_NE(c.set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  WarningCatcher warnings;
  g_object_set(c.src(), "pid", 11, nullptr);
  EXPECT_TRUE(contains(warnings.take(), "cannot change while the element is running"));
  gint pid = 0;
  g_object_get(c.src(), "pid", &pid, nullptr);
  EXPECT_EQ(pid, 10);
}

// ---- Caps ----

TEST(Caps, DefaultIsF32Stereo48kAndDownstreamCanChoose) {
  {
    auto s = scenario();
    s->packets(1, {480}).exit();
    Capture c(s);
    ASSERT_NE(c.set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
    c.pull();
    const procaudio::AudioFormat f = s->started_format();
    EXPECT_EQ(f.sample_format, procaudio::SampleFormat::kF32LE);
    EXPECT_EQ(f.rate, 48000u);
    EXPECT_EQ(f.channels, 2u);
  }
  {
    auto s = scenario();
    s->packets(10, {160}).exit();
    Capture c(s, "audio/x-raw,format=S16LE,rate=16000,channels=1");
    ASSERT_NE(c.set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
    const auto bufs = c.pull();
    const procaudio::AudioFormat f = s->started_format();
    EXPECT_EQ(f.sample_format, procaudio::SampleFormat::kS16LE);
    EXPECT_EQ(f.rate, 16000u);
    EXPECT_EQ(f.channels, 1u);
    ASSERT_FALSE(bufs.empty());
    EXPECT_EQ(bufs[0].offset_end - bufs[0].offset, 160u);  // 10 ms at 16 kHz
    EXPECT_EQ(bufs[0].duration, 10 * kMs);
  }
}

TEST(Caps, DownstreamLeavingTheChoiceOpenGetsTheBackendsPreferredFormat) {
  // E.g. wasapiprocsrc prefers the rate the Windows audio engine mixes at, so that it does
  // not resample; what downstream asks for still wins.
  struct Case {
    procaudio::AudioFormat preferred;
    std::string downstream;
    procaudio::AudioFormat expected;
  } cases[] = {
      {{procaudio::SampleFormat::kF32LE, 44100, 2},
       "",
       {procaudio::SampleFormat::kF32LE, 44100, 2}},
      {{procaudio::SampleFormat::kS16LE, 44100, 1},
       "",
       {procaudio::SampleFormat::kS16LE, 44100, 1}},
      {{procaudio::SampleFormat::kF32LE, 44100, 2},
       "audio/x-raw,rate=48000",
       {procaudio::SampleFormat::kF32LE, 48000, 2}},
  };
  for (const Case &k : cases) {
    auto s = scenario();
    s->preferred = k.preferred;
    s->packets(1, {441}).exit();
    Capture c(s, k.downstream);
    ASSERT_NE(c.set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
    c.pull();
    const procaudio::AudioFormat f = s->started_format();
    EXPECT_EQ(f, k.expected) << k.downstream << ": "
                             << procaudio::sample_format_name(f.sample_format) << " " << f.rate
                             << " Hz " << f.channels << " ch";
  }
}
