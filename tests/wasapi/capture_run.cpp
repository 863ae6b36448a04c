// SPDX-License-Identifier: LGPL-2.1-or-later
#include "capture_run.h"

#include <gst/app/gstappsink.h>
#include <gst/audio/audio.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>

#include "core/monotonic_clock.h"
#include "tone_analysis.h"

namespace procaudio {
namespace wasapi {
namespace testing {

namespace {

// What the streaming thread (appsink callback) and the bus (sync handler) hand the test
// thread. Guarded by mutex.
struct Shared {
  std::mutex mutex;
  std::condition_variable cond;
  GstElement *pipeline = nullptr;
  std::vector<CapturedBuffer> buffers;
  std::vector<TargetMessage> targets;
  std::vector<std::vector<float>> channels;
  AudioFormat format;
  bool have_format = false;
  bool eos = false;
  uint64_t eos_mono_ns = 0;
  bool reached_playing = false;
  BusErrorInfo error;
};

GstFlowReturn on_new_sample(GstAppSink *sink, gpointer data) {
  auto *shared = static_cast<Shared *>(data);
  GstSample *sample = gst_app_sink_pull_sample(sink);
  if (sample == nullptr) {
    return GST_FLOW_EOS;
  }
  const uint64_t mono = monotonic_now_ns();
  GstClockTime arrival = 0;
  if (GstClock *clock = gst_element_get_clock(shared->pipeline)) {
    arrival = gst_clock_get_time(clock) - gst_element_get_base_time(shared->pipeline);
    gst_object_unref(clock);
  }
  GstBuffer *buffer = gst_sample_get_buffer(sample);
  CapturedBuffer b;
  b.pts = GST_BUFFER_PTS(buffer);
  b.duration = GST_BUFFER_DURATION(buffer);
  b.offset = GST_BUFFER_OFFSET(buffer);
  b.offset_end = GST_BUFFER_OFFSET_END(buffer);
  b.discont = GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_DISCONT);
  b.gap = GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_GAP);
  b.arrival = arrival;
  b.arrival_mono_ns = mono;

  GstAudioInfo info;
  const bool known = gst_audio_info_from_caps(&info, gst_sample_get_caps(sample));
  AudioFormat format;
  if (known) {
    format.sample_format = GST_AUDIO_INFO_FORMAT(&info) == GST_AUDIO_FORMAT_S16LE
                               ? SampleFormat::kS16LE
                               : SampleFormat::kF32LE;
    format.rate = static_cast<uint32_t>(GST_AUDIO_INFO_RATE(&info));
    format.channels = static_cast<uint32_t>(GST_AUDIO_INFO_CHANNELS(&info));
  }
  std::vector<std::vector<float>> samples(format.channels);
  GstMapInfo map;
  if (known && gst_buffer_map(buffer, &map, GST_MAP_READ)) {
    const size_t frames = map.size / format.bytes_per_frame();
    bool silent = true;
    for (uint32_t ch = 0; ch < format.channels; ++ch) {
      samples[ch] = channel_of(map.data, frames, format, ch);
      for (float v : samples[ch]) {
        silent = silent && v == 0.f;
      }
    }
    b.silent = silent;
    gst_buffer_unmap(buffer, &map);
  }
  gst_sample_unref(sample);

  std::lock_guard<std::mutex> lock(shared->mutex);
  if (known && !shared->have_format) {
    shared->format = format;
    shared->have_format = true;
    shared->channels.assign(format.channels, {});
  }
  if (!shared->channels.empty() && samples.size() == shared->channels.size()) {
    b.first_sample = shared->channels[0].size();
    b.frames = samples[0].size();
    for (uint32_t ch = 0; ch < samples.size(); ++ch) {
      shared->channels[ch].insert(shared->channels[ch].end(), samples[ch].begin(),
                                  samples[ch].end());
    }
  }
  shared->buffers.push_back(b);
  shared->cond.notify_all();
  return GST_FLOW_OK;
}

// Nothing reads the bus: what matters is taken here, and the message dropped.
GstBusSyncReply on_bus(GstBus *, GstMessage *message, gpointer data) {
  auto *shared = static_cast<Shared *>(data);
  if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_STATE_CHANGED &&
      GST_MESSAGE_SRC(message) == GST_OBJECT(shared->pipeline)) {
    GstState state;
    gst_message_parse_state_changed(message, nullptr, &state, nullptr);
    std::lock_guard<std::mutex> lock(shared->mutex);
    shared->reached_playing = shared->reached_playing || state == GST_STATE_PLAYING;
  } else if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_EOS) {
    std::lock_guard<std::mutex> lock(shared->mutex);
    shared->eos = true;
    shared->eos_mono_ns = monotonic_now_ns();
    shared->cond.notify_all();
  } else if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ELEMENT &&
             gst_message_has_name(message, "procaudio-target")) {
    const GstStructure *s = gst_message_get_structure(message);
    TargetMessage t;
    const char *state = gst_structure_get_string(s, "state");
    const char *name = gst_structure_get_string(s, "process-name");
    t.state = state != nullptr ? state : "";
    t.process_name = name != nullptr ? name : "";
    guint pid = 0, streams = 0;
    gst_structure_get_uint(s, "pid", &pid);
    gst_structure_get_uint(s, "streams", &streams);
    t.pid = pid;
    t.streams = streams;
    t.mono_ns = monotonic_now_ns();
    std::lock_guard<std::mutex> lock(shared->mutex);
    t.buffers = shared->buffers.size();
    shared->targets.push_back(t);
    shared->cond.notify_all();
  } else if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR) {
    GError *error = nullptr;
    gchar *debug = nullptr;
    gst_message_parse_error(message, &error, &debug);
    std::lock_guard<std::mutex> lock(shared->mutex);
    if (!shared->error.posted) {
      shared->error = {true, error->domain, error->code, error->message, debug ? debug : ""};
    }
    g_error_free(error);
    g_free(debug);
    shared->cond.notify_all();
  }
  gst_message_unref(message);  // a sync handler that drops a message owns it
  return GST_BUS_DROP;
}

gboolean collect_stat(GQuark field, const GValue *value, gpointer data) {
  if (G_VALUE_HOLDS_UINT64(value)) {
    (*static_cast<std::map<std::string, uint64_t> *>(data))[g_quark_to_string(field)] =
        g_value_get_uint64(value);
  }
  return TRUE;
}

}  // namespace

std::vector<float> CaptureRun::samples_from(uint32_t ch, GstClockTime from, size_t frames) const {
  std::vector<float> out;
  if (ch >= channels.size()) {
    return out;
  }
  bool started_window = false;
  for (const CapturedBuffer &b : buffers) {
    if (!started_window) {
      if (!GST_CLOCK_TIME_IS_VALID(b.pts) || b.pts < from) {
        continue;
      }
      started_window = true;
    } else if (b.discont) {
      break;
    }
    const size_t take = std::min(b.frames, frames - out.size());
    out.insert(out.end(), channels[ch].begin() + static_cast<std::ptrdiff_t>(b.first_sample),
               channels[ch].begin() + static_cast<std::ptrdiff_t>(b.first_sample + take));
    if (out.size() >= frames) {
      break;
    }
  }
  return out;
}

GstClockTime CaptureRun::first_sound(float threshold) const {
  if (channels.empty()) {
    return GST_CLOCK_TIME_NONE;
  }
  for (const CapturedBuffer &b : buffers) {
    for (size_t i = b.first_sample; i < b.first_sample + b.frames; ++i) {
      if (std::fabs(channels[0][i]) > threshold) {
        return b.pts;
      }
    }
  }
  return GST_CLOCK_TIME_NONE;
}

CaptureRun run_capture(const std::string &description, uint32_t max_ms, const RunStep &step) {
  CaptureRun run;
  run.description = description;
  GError *parse_error = nullptr;
  GstElement *pipeline = gst_parse_launch(description.c_str(), &parse_error);
  if (pipeline == nullptr || parse_error != nullptr) {
    run.error = {true, parse_error ? parse_error->domain : 0, parse_error ? parse_error->code : 0,
                 parse_error ? parse_error->message : "parse failed", description};
    g_clear_error(&parse_error);
    if (pipeline != nullptr) {
      gst_object_unref(pipeline);
    }
    return run;
  }
  Shared shared;
  shared.pipeline = pipeline;
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  GstElement *src = gst_bin_get_by_name(GST_BIN(pipeline), "src");
  if (sink != nullptr) {
    GstAppSinkCallbacks callbacks = {};
    callbacks.new_sample = on_new_sample;
    gst_app_sink_set_callbacks(GST_APP_SINK(sink), &callbacks, &shared, nullptr);
  }
  GstBus *bus = gst_element_get_bus(pipeline);
  gst_bus_set_sync_handler(bus, on_bus, &shared, nullptr);

  run.started = gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(max_ms);
  while (run.started) {
    bool ended;
    {
      // Only the new buffers' descriptions: the samples are copied once, at the end.
      std::unique_lock<std::mutex> lock(shared.mutex);
      shared.cond.wait_until(lock, deadline, [&] {
        return shared.buffers.size() > run.buffers.size() ||
               shared.targets.size() > run.targets.size() || shared.eos || shared.error.posted;
      });
      run.targets = shared.targets;
      run.buffers.insert(run.buffers.end(),
                         shared.buffers.begin() + static_cast<std::ptrdiff_t>(run.buffers.size()),
                         shared.buffers.end());
      run.format = shared.format;
      run.eos = shared.eos;
      run.eos_mono_ns = shared.eos_mono_ns;
      ended = shared.eos || shared.error.posted;
    }
    if (ended || std::chrono::steady_clock::now() >= deadline || (step && step(run, pipeline))) {
      break;
    }
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  {
    std::lock_guard<std::mutex> lock(shared.mutex);
    run.buffers = shared.buffers;
    run.targets = shared.targets;
    run.channels = shared.channels;
    run.format = shared.format;
    run.eos = shared.eos;
    run.eos_mono_ns = shared.eos_mono_ns;
    run.reached_playing = shared.reached_playing;
    run.error = shared.error;
  }
  if (src != nullptr && g_object_class_find_property(G_OBJECT_GET_CLASS(src), "stats")) {
    GstStructure *stats = nullptr;
    g_object_get(src, "stats", &stats, nullptr);  // the counters last until the next start
    if (stats != nullptr) {
      gst_structure_foreach(stats, collect_stat, &run.stats);
      gchar *text = gst_structure_to_string(stats);
      run.stats_text = text;
      g_free(text);
      gst_structure_free(stats);
    }
  }
  gst_bus_set_sync_handler(bus, nullptr, nullptr, nullptr);
  gst_object_unref(bus);
  if (src != nullptr) {
    gst_object_unref(src);
  }
  if (sink != nullptr) {
    gst_object_unref(sink);
  }
  gst_object_unref(pipeline);
  return run;
}

std::string capture_description(const std::string &src_props, const std::string &caps,
                                const std::string &tail) {
  return "wasapiprocsrc name=src " + src_props + " ! " + caps + (tail.empty() ? "" : " ! " + tail) +
         " ! appsink name=sink sync=false max-buffers=0";
}

std::string caps_of(const AudioFormat &format) {
  return std::string("audio/x-raw,format=") + sample_format_name(format.sample_format) +
         ",rate=" + std::to_string(format.rate) + ",channels=" + std::to_string(format.channels);
}

int64_t finalised_wav_frames(const std::string &path, std::string &why) {
  std::ifstream in(path, std::ios::binary);
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto u32 = [&data](size_t at) {
    uint32_t v = 0;
    std::memcpy(&v, data.data() + at, 4);
    return v;
  };
  auto u16 = [&data](size_t at) {
    uint16_t v = 0;
    std::memcpy(&v, data.data() + at, 2);
    return v;
  };
  if (data.size() < 12 || data.compare(0, 4, "RIFF") != 0 || data.compare(8, 4, "WAVE") != 0) {
    why = path + " is not a RIFF/WAVE file (" + std::to_string(data.size()) + " bytes)";
    return -1;
  }
  if (u32(4) != data.size() - 8) {
    why = "RIFF size " + std::to_string(u32(4)) + " != file size - 8 (" +
          std::to_string(data.size() - 8) + "): not finalised";
    return -1;
  }
  size_t pos = 12;
  uint32_t block_align = 0;
  while (pos + 8 <= data.size()) {
    const uint32_t size = u32(pos + 4);
    if (data.compare(pos, 4, "fmt ") == 0 && pos + 8 + 14 <= data.size()) {
      block_align = u16(pos + 8 + 12);
    } else if (data.compare(pos, 4, "data") == 0) {
      // (wavenc may append a LIST chunk after it: the RIFF size covers it.)
      if (size == 0 || pos + 8 + size > data.size()) {
        why = "data size " + std::to_string(size) + " is not what the file holds (" +
              std::to_string(data.size() - pos - 8) + " bytes after the header): not finalised";
        return -1;
      }
      if (block_align == 0) {
        why = "no fmt chunk before the data";
        return -1;
      }
      return size / block_align;
    }
    pos += 8 + size + (size & 1);
  }
  why = "no data chunk";
  return -1;
}

std::string continuity_problems(const std::vector<CapturedBuffer> &buffers) {
  std::string problems;
  for (size_t i = 0; i < buffers.size(); ++i) {
    const CapturedBuffer &b = buffers[i];
    if (i == 0) {
      if (!b.discont) {
        problems += "the first buffer is not DISCONT; ";
      }
      continue;
    }
    const CapturedBuffer &a = buffers[i - 1];
    if (!b.discont && (b.pts != a.pts + a.duration || b.offset != a.offset_end)) {
      problems += "buffer " + std::to_string(i) + ": PTS " + std::to_string(b.pts) +
                  " != " + std::to_string(a.pts + a.duration) + " without DISCONT; ";
    }
  }
  return problems;
}

}  // namespace testing
}  // namespace wasapi
}  // namespace procaudio
