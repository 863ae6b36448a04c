// SPDX-License-Identifier: LGPL-2.1-or-later
// One real pipeline run for the wasapi-real suite: a description whose source is named "src"
// and whose sink is an appsink named "sink"; every buffer that reaches the sink (timestamps,
// flags, arrival, samples per channel), the bus's first error, the EOS and when it came, the
// source's final stats. Waits only on conditions, each bounded.
#pragma once

#include <gst/gst.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/audio_format.h"

namespace procaudio {
namespace wasapi {
namespace testing {

struct BusErrorInfo {
  bool posted = false;
  GQuark domain = 0;
  int code = 0;
  std::string message;
  std::string debug;
};

struct CapturedBuffer {
  GstClockTime pts = GST_CLOCK_TIME_NONE;
  GstClockTime duration = GST_CLOCK_TIME_NONE;
  uint64_t offset = 0;
  uint64_t offset_end = 0;
  bool discont = false;
  bool gap = false;
  bool silent = false;           // every sample 0
  GstClockTime arrival = 0;      // running time at the appsink
  uint64_t arrival_mono_ns = 0;  // monotonic, as the rest of the test measures
  size_t first_sample = 0;       // where its samples start in CaptureRun::channels[ch]
  size_t frames = 0;             // how many it holds there (0: not mapped)
};

// One "procaudio-target" element message.
struct TargetMessage {
  std::string state;  // waiting, capturing, exited
  uint32_t pid = 0;
  std::string process_name;
  uint32_t streams = 0;
  uint64_t mono_ns = 0;  // when the bus had it
  size_t buffers = 0;    // how many buffers had reached the sink by then
};

struct CaptureRun {
  std::string description;
  bool started = false;          // set_state(PLAYING) did not fail
  bool reached_playing = false;  // the pipeline posted its change to PLAYING
  BusErrorInfo error;
  bool eos = false;
  uint64_t eos_mono_ns = 0;
  AudioFormat format;
  std::vector<CapturedBuffer> buffers;
  std::vector<TargetMessage> targets;        // in the order posted
  std::vector<std::vector<float>> channels;  // every sample, per channel
  std::map<std::string, uint64_t> stats;     // the source's final "stats"
  std::string stats_text;

  // Samples of channel `ch` from the first buffer whose PTS is at or after `from` running
  // time, at most `frames` of them, and none past a DISCONT (another stretch of time).
  std::vector<float> samples_from(uint32_t ch, GstClockTime from, size_t frames) const;
  // The running time of the first buffer with a sample louder than `threshold`, or NONE.
  GstClockTime first_sound(float threshold = 1e-3f) const;
};

// What a run may do while it runs: called on the test thread as buffers and target messages
// arrive (`run` holds their descriptions so far; its samples only once the run is over);
// return true to end the run (the pipeline is then set to NULL).
using RunStep = std::function<bool(CaptureRun &run, GstElement *pipeline)>;

// Runs `description` until EOS, an error, `step` ending it, or `max_ms` of wall time.
CaptureRun run_capture(const std::string &description, uint32_t max_ms, const RunStep &step = {});

// "wasapiprocsrc name=src <props> ! <caps> ! appsink name=sink"
std::string capture_description(const std::string &src_props, const std::string &caps,
                                const std::string &tail = "");

// The caps string of `format`: "audio/x-raw,format=F32LE,rate=48000,channels=2".
std::string caps_of(const AudioFormat &format);

// A RIFF/WAVE file whose RIFF and data sizes were written (the muxer finalised it); its
// frames, or -1 with `why`.
int64_t finalised_wav_frames(const std::string &path, std::string &why);

// Every PTS follows the previous buffer's PTS + DURATION exactly unless the buffer is DISCONT;
// the first buffer is DISCONT. Failures as text (empty: continuous).
std::string continuity_problems(const std::vector<CapturedBuffer> &buffers);

}  // namespace testing
}  // namespace wasapi
}  // namespace procaudio
