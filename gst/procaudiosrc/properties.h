// SPDX-License-Identifier: LGPL-2.1-or-later
// The settings a user gives GstProcAudioSrc, as GObject properties: their specs (the blurbs
// gst-inspect-1.0 shows, the manual of the element), the enum types, reading and writing them,
// and the rules they must meet before a capture starts. No state of the element here.
#pragma once

#include <gst/gst.h>

#include <string>

#include "core/capture_error.h"
#include "core/target_spec.h"

namespace procaudio {

constexpr gint64 kDefaultLatencyTimeUs = 10000;
constexpr gint64 kDefaultBufferTimeUs = 200000;

enum SrcProperty : guint {
  PROP_0,
  PROP_PID,
  PROP_PROCESS_NAME,
  PROP_MODE,
  PROP_ON_TARGET_EXIT,
  PROP_REFERENCE_TIMESTAMP,
  PROP_LATENCY_TIME,
  PROP_BUFFER_TIME,
  PROP_STATS,  // read-only, the element's counters: not a setting
};

// What a user can set; the element reads it under its object lock and copies it at start.
struct Settings {
  gint pid = 0;  // 0: not set; negative: given, and refused at start
  std::string process_name;
  bool process_name_set = false;  // set, even to "" (refused at start), not left NULL
  TargetMode mode = TargetMode::kIncludeTree;
  OnTargetExit on_exit = OnTargetExit::kEos;
  bool reference_timestamp = false;
  gint64 latency_time_us = kDefaultLatencyTimeUs;
  gint64 buffer_time_us = kDefaultBufferTimeUs;
};

// Installs every property of the element, PROP_STATS included.
void install_properties(GObjectClass *klass);

// Writes (reads) the setting `prop_id` names; false if it names none (PROP_STATS, unknown).
bool set_setting(Settings &settings, guint prop_id, const GValue *value);
bool get_setting(const Settings &settings, guint prop_id, GValue *value);

TargetSpec target_of(const Settings &settings);
// The rules a capture needs (sizes, the target's): an error of kind kInvalidSettings.
CaptureError check_settings(const Settings &settings);

}  // namespace procaudio
