// SPDX-License-Identifier: LGPL-2.1-or-later
#include "gstprocaudio-utils.h"

namespace procaudio {

namespace {

GstDebugLevel to_gst_level(LogLevel level) {
  switch (level) {
    case LogLevel::kError:
      return GST_LEVEL_ERROR;
    case LogLevel::kWarning:
      return GST_LEVEL_WARNING;
    case LogLevel::kInfo:
      return GST_LEVEL_INFO;
    case LogLevel::kDebug:
      return GST_LEVEL_DEBUG;
    case LogLevel::kLog:
      return GST_LEVEL_LOG;
    case LogLevel::kTrace:
      return GST_LEVEL_TRACE;
  }
  return GST_LEVEL_DEBUG;
}

}  // namespace

GstErrorCode gst_error_code_of(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidSettings:
      return {GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS};
    case ErrorKind::kNotFound:
      return {GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND};
    case ErrorKind::kAccessDenied:
      return {GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_AUTHORIZED};
    case ErrorKind::kUnsupportedOs:
    case ErrorKind::kBackendUnavailable:
    case ErrorKind::kTimeout:
      return {GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ};
    case ErrorKind::kDeviceLost:
      return {GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_READ};
    case ErrorKind::kFormatRefused:
      return {GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT};
    case ErrorKind::kNone:
    case ErrorKind::kFailed:
      break;
  }
  return {GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_FAILED};
}

void post_capture_error(GstElement *element, GstDebugCategory *category, const CaptureError &error,
                        const char *function, int line) {
  const GstErrorCode code = gst_error_code_of(error.kind);
  GST_CAT_ERROR_OBJECT(category, element, "%s (%s)", error.message.c_str(), error.detail.c_str());
  gst_element_message_full(element, GST_MESSAGE_ERROR, code.domain, code.code,
                           g_strdup(error.message.c_str()), g_strdup(error.detail.c_str()),
                           __FILE__, function, line);
}

Logger element_logger(GObject *object, GstDebugCategory *(*category_of)(GObject *)) {
  return Logger(
      [object, category_of](LogLevel level) {
        return to_gst_level(level) <= gst_debug_category_get_threshold(category_of(object));
      },
      [object, category_of](LogLevel level, const char *file, int line, const char *text) {
        gst_debug_log(category_of(object), to_gst_level(level), file, "backend", line, object, "%s",
                      text);
      });
}

GstStructure *stats_structure(const EngineStats &s) {
  GstStructure *structure = gst_structure_new_empty("procaudio-stats");
#define PROCAUDIO_STAT_SET(field, name) \
  gst_structure_set(structure, name, G_TYPE_UINT64, static_cast<guint64>(s.field), nullptr);
  PROCAUDIO_ENGINE_STATS(PROCAUDIO_STAT_SET)
#undef PROCAUDIO_STAT_SET
  return structure;
}

GstCaps *caps_for(const FormatCaps &formats) {
  GstCaps *caps = gst_caps_new_empty();
  for (SampleFormat sample_format : formats.sample_formats) {
    GstStructure *s =
        gst_structure_new("audio/x-raw", "format", G_TYPE_STRING, sample_format_name(sample_format),
                          "layout", G_TYPE_STRING, "interleaved", nullptr);
    if (formats.rates.empty()) {
      gst_structure_set(s, "rate", GST_TYPE_INT_RANGE, static_cast<gint>(formats.rate_min),
                        static_cast<gint>(formats.rate_max), nullptr);
    } else {
      GValue list = G_VALUE_INIT;
      gst_value_list_init(&list, static_cast<guint>(formats.rates.size()));
      for (uint32_t rate : formats.rates) {
        GValue v = G_VALUE_INIT;
        g_value_init(&v, G_TYPE_INT);
        g_value_set_int(&v, static_cast<gint>(rate));
        gst_value_list_append_and_take_value(&list, &v);
      }
      gst_structure_take_value(s, "rate", &list);
    }
    if (formats.channels_min == formats.channels_max) {
      gst_structure_set(s, "channels", G_TYPE_INT, static_cast<gint>(formats.channels_min),
                        nullptr);
    } else {
      gst_structure_set(s, "channels", GST_TYPE_INT_RANGE, static_cast<gint>(formats.channels_min),
                        static_cast<gint>(formats.channels_max), nullptr);
    }
    gst_caps_append_structure(caps, s);
  }
  return caps;
}

GstCaps *fixate_to(GstCaps *caps, const AudioFormat &preferred) {
  const char *format =
      preferred.sample_format == SampleFormat::kS16LE ? GST_AUDIO_NE(S16) : GST_AUDIO_NE(F32);
  // The base class keeps the first structure: if that one cannot have the format, a copy of
  // the first that can goes in front of it.
  GValue wanted = G_VALUE_INIT;
  g_value_init(&wanted, G_TYPE_STRING);
  g_value_set_static_string(&wanted, format);
  auto allows = [&wanted](const GstStructure *s) {
    const GValue *field = gst_structure_get_value(s, "format");
    return field == nullptr || gst_value_intersect(nullptr, field, &wanted);
  };
  if (!allows(gst_caps_get_structure(caps, 0))) {
    for (guint i = 1; i < gst_caps_get_size(caps); ++i) {
      if (allows(gst_caps_get_structure(caps, i))) {
        caps = gst_caps_merge(gst_caps_copy_nth(caps, i), caps);
        break;
      }
    }
  }
  g_value_unset(&wanted);
  caps = gst_caps_make_writable(caps);
  for (guint i = 0; i < gst_caps_get_size(caps); ++i) {
    GstStructure *s = gst_caps_get_structure(caps, i);
    gst_structure_fixate_field_string(s, "format", format);
    gst_structure_fixate_field_nearest_int(s, "rate", static_cast<int>(preferred.rate));
    gst_structure_fixate_field_nearest_int(s, "channels", static_cast<int>(preferred.channels));
  }
  return caps;
}

bool audio_format_of(const GstAudioInfo &info, AudioFormat &format) {
  const GstAudioFormat f = GST_AUDIO_INFO_FORMAT(&info);
  if ((f != GST_AUDIO_FORMAT_F32LE && f != GST_AUDIO_FORMAT_S16LE) ||
      GST_AUDIO_INFO_LAYOUT(&info) != GST_AUDIO_LAYOUT_INTERLEAVED) {
    return false;
  }
  format.sample_format = f == GST_AUDIO_FORMAT_S16LE ? SampleFormat::kS16LE : SampleFormat::kF32LE;
  format.rate = static_cast<uint32_t>(GST_AUDIO_INFO_RATE(&info));
  format.channels = static_cast<uint32_t>(GST_AUDIO_INFO_CHANNELS(&info));
  return true;
}

GstMessage *target_message(GstObject *src, const TargetState &state, uint64_t offset,
                           const std::string &process_name) {
  GstStructure *s =
      gst_structure_new("procaudio-target", "state", G_TYPE_STRING, target_phase_name(state.phase),
                        "pid", G_TYPE_UINT, state.pid, "process-name", G_TYPE_STRING,
                        process_name.empty() ? nullptr : process_name.c_str(), "streams",
                        G_TYPE_UINT, state.streams, "offset", G_TYPE_UINT64, offset, nullptr);
  return gst_message_new_element(src, s);
}

}  // namespace procaudio
