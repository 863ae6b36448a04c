// SPDX-License-Identifier: LGPL-2.1-or-later
#include "properties.h"

#include "gstprocaudiosrc.h"

GType gst_proc_audio_mode_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {static_cast<gint>(procaudio::TargetMode::kIncludeTree),
       "The target process and all its descendants, including ones started later", "include-tree"},
      {static_cast<gint>(procaudio::TargetMode::kExcludeTree),
       "Every process except the target and its descendants", "exclude-tree"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter(&type)) {
    g_once_init_leave(&type, g_enum_register_static("GstProcAudioMode", values));
  }
  return type;
}

GType gst_proc_audio_on_target_exit_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {static_cast<gint>(procaudio::OnTargetExit::kEos),
       "End the stream (EOS): files being written are finalised", "eos"},
      {static_cast<gint>(procaudio::OnTargetExit::kWait),
       "Keep the stream live with GAP silence and capture the next process of that name when it "
       "starts (needs process-name)",
       "wait"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter(&type)) {
    g_once_init_leave(&type, g_enum_register_static("GstProcAudioOnTargetExit", values));
  }
  return type;
}

namespace procaudio {

void install_properties(GObjectClass *gobject_class) {
  const auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                              GST_PARAM_MUTABLE_READY);
  g_object_class_install_property(
      gobject_class, PROP_PID,
      // Signed, so that a negative value reaches the element and fails the start: GObject
      // would refuse it for an unsigned property and leave 0, which means "no target".
      g_param_spec_int("pid", "Process ID",
                       "Process whose audio to capture (0 = none). Checked when the element "
                       "goes to PAUSED: a pid that does not exist, or a negative one, fails "
                       "that state change. Set this or process-name, not both. With neither, "
                       "include-tree fails to start rather than capture more than asked",
                       G_MININT, G_MAXINT, 0, flags));
  g_object_class_install_property(
      gobject_class, PROP_PROCESS_NAME,
      g_param_spec_string("process-name", "Process name",
                          "Executable name of the process to capture (e.g. \"firefox\", "
                          "\"chrome.exe\"), resolved when the element goes to PAUSED; several "
                          "matches pick the oldest. With on-target-exit=wait it need not run "
                          "yet. Set this or pid, not both; an empty name fails to start",
                          nullptr, flags));
  g_object_class_install_property(
      gobject_class, PROP_MODE,
      g_param_spec_enum("mode", "Mode",
                        "Capture the target's process tree (include-tree) or every process "
                        "except it (exclude-tree). With no target, exclude-tree captures every "
                        "process except this one and include-tree fails to start",
                        GST_TYPE_PROC_AUDIO_MODE,
                        static_cast<gint>(procaudio::TargetMode::kIncludeTree), flags));
  g_object_class_install_property(
      gobject_class, PROP_ON_TARGET_EXIT,
      g_param_spec_enum("on-target-exit", "On target exit",
                        "What the target's exit does: eos ends the stream (files are "
                        "finalised); wait keeps it live with GAP silence, as before the target "
                        "first starts, and captures the next process of that name (needs "
                        "process-name and include-tree). Every change is posted as an element "
                        "message \"procaudio-target\" (state: waiting, capturing, exited; pid; "
                        "process-name; streams; offset, the buffer offset it holds from), posted "
                        "before the buffer it applies to",
                        GST_TYPE_PROC_AUDIO_ON_TARGET_EXIT,
                        static_cast<gint>(procaudio::OnTargetExit::kEos), flags));
  g_object_class_install_property(
      gobject_class, PROP_REFERENCE_TIMESTAMP,
      g_param_spec_boolean("reference-timestamp", "Reference timestamp",
                           "Attach to each buffer a GstReferenceTimestampMeta (caps "
                           "timestamp/x-unix): the wall-clock time, in ns since 1970, at which "
                           "its first frame was captured",
                           FALSE, flags));
  g_object_class_install_property(
      gobject_class, PROP_LATENCY_TIME,
      g_param_spec_int64("latency-time", "Latency time",
                         "Duration of one output buffer, in microseconds: the smallest latency "
                         "the element adds",
                         1, G_MAXINT64, kDefaultLatencyTimeUs, flags));
  g_object_class_install_property(
      gobject_class, PROP_BUFFER_TIME,
      g_param_spec_int64("buffer-time", "Buffer time",
                         "Most audio, in microseconds, held between the capture thread and the "
                         "streaming thread; beyond it the oldest is dropped, counted in stats and "
                         "reported with a QoS message, and the next buffer is DISCONT. At least "
                         "latency-time",
                         1, G_MAXINT64, kDefaultBufferTimeUs, flags));
  g_object_class_install_property(
      gobject_class, PROP_STATS,
      g_param_spec_boxed(
          "stats", "Statistics",
          "Counters since the element last went to PAUSED: packets, frames-captured, "
          "frames-silent (delivered silent by the OS), frames-gap-filled (silence made by the "
          "element), frames-dropped (overflow), frames-pushed, discontinuities (DISCONT "
          "buffers), resyncs, reattachments (the target followed to a new process), "
          "chunks-pushed, latency-last and latency-max (ns from a chunk's arrival to its push), "
          "arrival-last (when the last pushed chunk arrived, ns of the monotonic clock), "
          "packets-late (audio that came for time already filled with silence), lateness-max "
          "(ns from a buffer's PTS + DURATION to its push, at worst) and buffers-late (pushed "
          "later than PTS + DURATION + the reported min latency)",
          GST_TYPE_STRUCTURE, static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));
}

bool set_setting(Settings &settings, guint prop_id, const GValue *value) {
  switch (prop_id) {
    case PROP_PID:
      settings.pid = g_value_get_int(value);
      return true;
    case PROP_PROCESS_NAME: {
      const gchar *name = g_value_get_string(value);
      settings.process_name = name != nullptr ? name : "";
      settings.process_name_set = name != nullptr;
      return true;
    }
    case PROP_MODE:
      settings.mode = static_cast<TargetMode>(g_value_get_enum(value));
      return true;
    case PROP_ON_TARGET_EXIT:
      settings.on_exit = static_cast<OnTargetExit>(g_value_get_enum(value));
      return true;
    case PROP_REFERENCE_TIMESTAMP:
      settings.reference_timestamp = g_value_get_boolean(value);
      return true;
    case PROP_LATENCY_TIME:
      settings.latency_time_us = g_value_get_int64(value);
      return true;
    case PROP_BUFFER_TIME:
      settings.buffer_time_us = g_value_get_int64(value);
      return true;
    default:
      return false;
  }
}

bool get_setting(const Settings &settings, guint prop_id, GValue *value) {
  switch (prop_id) {
    case PROP_PID:
      g_value_set_int(value, settings.pid);
      return true;
    case PROP_PROCESS_NAME:
      g_value_set_string(value,
                         settings.process_name_set ? settings.process_name.c_str() : nullptr);
      return true;
    case PROP_MODE:
      g_value_set_enum(value, static_cast<gint>(settings.mode));
      return true;
    case PROP_ON_TARGET_EXIT:
      g_value_set_enum(value, static_cast<gint>(settings.on_exit));
      return true;
    case PROP_REFERENCE_TIMESTAMP:
      g_value_set_boolean(value, settings.reference_timestamp);
      return true;
    case PROP_LATENCY_TIME:
      g_value_set_int64(value, settings.latency_time_us);
      return true;
    case PROP_BUFFER_TIME:
      g_value_set_int64(value, settings.buffer_time_us);
      return true;
    default:
      return false;
  }
}

TargetSpec target_of(const Settings &settings) {
  TargetSpec target;
  target.pid = settings.pid > 0 ? static_cast<uint32_t>(settings.pid) : 0;
  target.process_name = settings.process_name;
  target.mode = settings.mode;
  target.on_exit = settings.on_exit;
  return target;
}

CaptureError check_settings(const Settings &settings) {
  // A value given but unusable must fail, not read as "not set": with mode=exclude-tree "not
  // set" means every process but this one.
  if (settings.pid < 0) {
    return {ErrorKind::kInvalidSettings,
            "pid " + std::to_string(settings.pid) +
                " is not a process id: give the pid of the process to capture, or 0 for none.",
            "GstProcAudioSrc: negative pid"};
  }
  if (settings.process_name_set && settings.process_name.empty()) {
    return {ErrorKind::kInvalidSettings,
            "process-name is empty: give the executable's name (e.g. process-name=firefox), or "
            "leave process-name unset.",
            "GstProcAudioSrc: process-name set to \"\""};
  }
  if (settings.buffer_time_us < settings.latency_time_us) {
    return {ErrorKind::kInvalidSettings,
            "buffer-time (" + std::to_string(settings.buffer_time_us) +
                " us) is shorter than latency-time (" + std::to_string(settings.latency_time_us) +
                " us): buffer-time must hold at least one chunk. Raise buffer-time or lower "
                "latency-time.",
            "GstProcAudioSrc: buffer-time < latency-time"};
  }
  return target_of(settings).validate();
}

}  // namespace procaudio
