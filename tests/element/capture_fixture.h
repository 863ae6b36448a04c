// SPDX-License-Identifier: LGPL-2.1-or-later
// What the element tests share: scriptedprocsrc [! caps] ! appsink with a scenario, what
// reaches the sink, bus errors, GLib warnings, a temporary WAV.
#pragma once

#include <glib/gstdio.h>
#include <gst/app/gstappsink.h>
#include <gst/audio/audio.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gstscriptedprocsrc.h"

namespace element_testing {

using procaudio::testing::Scenario;

constexpr uint64_t kMs = GST_MSECOND;
constexpr uint64_t kTimeoutMs = 10000;

// A file in /tmp that is removed however the test ends (a failed ASSERT returns early).
class TempWav {
 public:
  TempWav() {
    const int fd = g_mkstemp(path_);
    if (fd >= 0)
      g_close(fd, nullptr);
    else
      path_[0] = '\0';
  }
  ~TempWav() {
    if (path_[0])
      std::remove(path_);
  }
  TempWav(const TempWav &) = delete;
  TempWav &operator=(const TempWav &) = delete;
  bool ok() const { return path_[0] != '\0'; }
  const char *path() const { return path_; }

 private:
  char path_[32] = "/tmp/procaudio-test-XXXXXX.wav";
};

struct Buf {
  GstClockTime pts, duration;
  guint64 offset, offset_end;
  bool discont, gap;
  std::vector<float> first_channel;  // F32 captures only
  const void *pool;                  // the GstBufferPool it came from (compared only)
};

// scriptedprocsrc [! caps] ! appsink, with a scenario; collects what reaches the sink.
class Capture {
 public:
  explicit Capture(std::shared_ptr<Scenario> scenario, const std::string &after_src = "",
                   const std::string &src_props = "", const std::string &sink_props = "")
      : scenario_(std::move(scenario)) {
    // The scripted backend ignores the target, but the element fails closed without one.
    const bool names_target = src_props.find("pid=") != std::string::npos ||
                              src_props.find("process-name=") != std::string::npos ||
                              src_props.find("mode=") != std::string::npos;
    const std::string desc = "scriptedprocsrc name=src " +
                             std::string(names_target ? "" : "process-name=scripted-target ") +
                             src_props + " ! " + after_src + (after_src.empty() ? "" : " ! ") +
                             "appsink name=sink sync=false " + sink_props;
    GError *error = nullptr;
    pipeline_ = gst_parse_launch(desc.c_str(), &error);
    EXPECT_EQ(error, nullptr) << (error ? error->message : "");
    src_ = gst_bin_get_by_name(GST_BIN(pipeline_), "src");
    sink_ = gst_bin_get_by_name(GST_BIN(pipeline_), "sink");
    gst_scripted_proc_src_set_scenario(src_, scenario_);
    bus_ = gst_element_get_bus(pipeline_);
  }
  ~Capture() {
    gst_element_set_state(pipeline_, GST_STATE_NULL);
    gst_object_unref(bus_);
    gst_object_unref(sink_);
    gst_object_unref(src_);
    gst_object_unref(pipeline_);
  }

  // PLAYING completes asynchronously once a buffer reaches the sink; other states at once.
  GstStateChangeReturn set_state(GstState state) {
    const GstStateChangeReturn ret = gst_element_set_state(pipeline_, state);
    if (ret != GST_STATE_CHANGE_ASYNC || state == GST_STATE_PLAYING) {
      return ret;
    }
    return gst_element_get_state(pipeline_, nullptr, nullptr, kTimeoutMs * kMs);
  }

  // Pulls until EOS (or `max` buffers); every wait is bounded.
  std::vector<Buf> pull(size_t max = SIZE_MAX) {
    std::vector<Buf> out;
    while (out.size() < max) {
      GstSample *sample = gst_app_sink_try_pull_sample(GST_APP_SINK(sink_), kTimeoutMs * kMs);
      if (sample == nullptr) {
        EXPECT_TRUE(gst_app_sink_is_eos(GST_APP_SINK(sink_))) << "no buffer within timeout";
        break;
      }
      out.push_back(to_buf(sample));
      gst_sample_unref(sample);
    }
    return out;
  }

  // The next bus message of one of `types`, or null after the timeout.
  GstMessage *wait_message(GstMessageType types, uint64_t timeout_ms = kTimeoutMs) {
    return gst_bus_timed_pop_filtered(bus_, timeout_ms * kMs, types);
  }

  GstStructure *stats() {
    GstStructure *s = nullptr;
    g_object_get(src_, "stats", &s, nullptr);
    return s;
  }
  guint64 stat(const char *field) {
    GstStructure *s = stats();
    guint64 v = 0;
    EXPECT_TRUE(gst_structure_get_uint64(s, field, &v)) << field;
    gst_structure_free(s);
    return v;
  }

  GstElement *pipeline() const { return pipeline_; }
  GstElement *src() const { return src_; }
  GstElement *sink() const { return sink_; }

 private:
  static Buf to_buf(GstSample *sample) {
    GstBuffer *b = gst_sample_get_buffer(sample);
    Buf buf{GST_BUFFER_PTS(b),
            GST_BUFFER_DURATION(b),
            GST_BUFFER_OFFSET(b),
            GST_BUFFER_OFFSET_END(b),
            GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DISCONT) != 0,
            GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_GAP) != 0,
            {},
            b->pool};
    GstAudioInfo info;
    if (gst_audio_info_from_caps(&info, gst_sample_get_caps(sample)) &&
        GST_AUDIO_INFO_FORMAT(&info) == GST_AUDIO_FORMAT_F32LE) {
      GstMapInfo map;
      gst_buffer_map(b, &map, GST_MAP_READ);
      const size_t frames = map.size / GST_AUDIO_INFO_BPF(&info);
      for (size_t i = 0; i < frames; ++i) {
        float v;
        std::memcpy(&v, map.data + i * GST_AUDIO_INFO_BPF(&info), 4);
        buf.first_channel.push_back(v);
      }
      gst_buffer_unmap(b, &map);
    }
    return buf;
  }

  std::shared_ptr<Scenario> scenario_;
  GstElement *pipeline_, *src_, *sink_;
  GstBus *bus_;
};

struct ErrorInfo {
  bool found = false;
  GQuark domain = 0;
  int code = 0;
  std::string message, debug;
};

inline ErrorInfo wait_error(Capture &c) {
  ErrorInfo info;
  GstMessage *msg = c.wait_message(GST_MESSAGE_ERROR);
  if (msg == nullptr) {
    return info;
  }
  GError *err = nullptr;
  gchar *debug = nullptr;
  gst_message_parse_error(msg, &err, &debug);
  info = {true, err->domain, err->code, err->message, debug ? debug : ""};
  g_error_free(err);
  g_free(debug);
  gst_message_unref(msg);
  return info;
}

inline bool contains(const std::string &s, const std::string &part) {
  return s.find(part) != std::string::npos;
}

// Captures GLib warnings (GObject's range checks, the element's own refusals).
class WarningCatcher {
 public:
  WarningCatcher() {
    for (const char *domain : {"GLib-GObject", static_cast<const char *>(nullptr)}) {
      ids_.emplace_back(domain, g_log_set_handler(domain,
                                                  static_cast<GLogLevelFlags>(G_LOG_LEVEL_WARNING |
                                                                              G_LOG_LEVEL_CRITICAL),
                                                  &WarningCatcher::handler, this));
    }
  }
  ~WarningCatcher() {
    for (auto &[domain, id] : ids_) {
      g_log_remove_handler(domain, id);
    }
  }
  std::string take() {
    std::string all;
    for (auto &m : messages_) {
      all += m + "\n";
    }
    messages_.clear();
    return all;
  }

 private:
  static void handler(const gchar *, GLogLevelFlags, const gchar *message, gpointer self) {
    static_cast<WarningCatcher *>(self)->messages_.emplace_back(message);
  }
  std::vector<std::pair<const char *, guint>> ids_;
  std::vector<std::string> messages_;
};

inline std::shared_ptr<Scenario> scenario() {
  return std::make_shared<Scenario>();
}

}  // namespace element_testing
