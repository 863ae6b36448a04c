// GstProcAudioSrc: see gstprocaudiosrc.h and docs/architecture.md.
//
// Threads: the application thread sets properties and changes state; the capture thread
// (the backend's) feeds the engine; the streaming thread runs create(), which waits on the
// engine's condition and never polls.
#include "gstprocaudiosrc.h"

#include <gst/audio/audio.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "core/capture_engine.h"
#include "core/monotonic_clock.h"
#include "object_locker.h"
#include "time_mapper.h"

using procaudio::CaptureError;
using procaudio::ErrorKind;
using procaudio::ObjectLocker;

GST_DEBUG_CATEGORY_STATIC(gst_proc_audio_src_debug);

namespace {

constexpr gint64 kDefaultLatencyTimeUs = 10000;
constexpr gint64 kDefaultBufferTimeUs = 200000;
constexpr guint64 kAlignmentThresholdNs = 40 * GST_MSECOND;

enum {
  PROP_0,
  PROP_PID,
  PROP_PROCESS_NAME,
  PROP_MODE,
  PROP_LATENCY_TIME,
  PROP_BUFFER_TIME,
  PROP_STATS,
};

// What a user can set; read under the object lock, copied at start.
struct Settings {
  guint pid = 0;
  std::string process_name;
  procaudio::TargetMode mode = procaudio::TargetMode::kIncludeTree;
  gint64 latency_time_us = kDefaultLatencyTimeUs;
  gint64 buffer_time_us = kDefaultBufferTimeUs;
};

}  // namespace

// The C++ state beside the GObject, as libcamerasrc keeps it.
struct GstProcAudioSrcState {
  explicit GstProcAudioSrcState(procaudio::Logger logger)
      : engine(logger), log(std::move(logger)) {}

  Settings settings;  // guarded by the object lock
  Settings active;    // what start() took; streaming thread and state changes only

  procaudio::CaptureEngine engine;
  procaudio::Logger log;
  std::unique_ptr<procaudio::CaptureBackend> backend;  // from start() to stop()

  // Capture runs only while PLAYING. GstBaseSrc (1.22) calls create() without its LIVE lock
  // and does not unblock it on PLAYING->PAUSED, so the element keeps its own flag: a pause
  // ends the stream, and create() waits here for PLAYING (or unlock) to start a fresh one.
  // Guards `playing`, `capturing` and backend start/stop.
  std::mutex capture_mutex;
  std::condition_variable capture_cond;
  bool playing = false;
  bool capturing = false;

  GstAudioInfo info;
  bool have_format = false;
  procaudio::AudioFormat format;

  procaudio::TimeMapper mapper;
  // Running time of the current anchor: fixed between discontinuities so that PTS comes
  // from sample offsets alone.
  GstClockTimeDiff anchor_running_time = 0;
  uint64_t anchor_offset = 0;
  uint64_t anchor_time_ns = 0;
  bool have_anchor = false;
};

struct GstProcAudioSrcPrivate {
  GstProcAudioSrcState *state;
};

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE(GstProcAudioSrc, gst_proc_audio_src, GST_TYPE_PUSH_SRC)

#define STATE(self) \
  (static_cast<GstProcAudioSrcPrivate *>(gst_proc_audio_src_get_instance_private(self))->state)
// Log into the subclass's category, so GST_DEBUG=pipewireprocsrc:6 shows everything.
#define CAT(self) (GST_PROC_AUDIO_SRC_GET_CLASS(self)->debug_category)
#define SRC_LOG(self, level, ...) GST_CAT_LEVEL_LOG(CAT(self), level, self, __VA_ARGS__)
#define SRC_ERROR(self, ...) SRC_LOG(self, GST_LEVEL_ERROR, __VA_ARGS__)
#define SRC_WARNING(self, ...) SRC_LOG(self, GST_LEVEL_WARNING, __VA_ARGS__)
#define SRC_INFO(self, ...) SRC_LOG(self, GST_LEVEL_INFO, __VA_ARGS__)
#define SRC_DEBUG(self, ...) SRC_LOG(self, GST_LEVEL_DEBUG, __VA_ARGS__)
#define SRC_LOG_(self, ...) SRC_LOG(self, GST_LEVEL_LOG, __VA_ARGS__)

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

namespace {

GstDebugLevel to_gst_level(procaudio::LogLevel level) {
  switch (level) {
    case procaudio::LogLevel::kError:
      return GST_LEVEL_ERROR;
    case procaudio::LogLevel::kWarning:
      return GST_LEVEL_WARNING;
    case procaudio::LogLevel::kInfo:
      return GST_LEVEL_INFO;
    case procaudio::LogLevel::kDebug:
      return GST_LEVEL_DEBUG;
    case procaudio::LogLevel::kLog:
      return GST_LEVEL_LOG;
    case procaudio::LogLevel::kTrace:
      return GST_LEVEL_TRACE;
  }
  return GST_LEVEL_DEBUG;
}

// The category is looked up at each line: during instance init GObject presents the base
// class, not the subclass whose category this should be.
procaudio::Logger make_logger(GstProcAudioSrc *self) {
  return procaudio::Logger(
      [self](procaudio::LogLevel level) {
        return to_gst_level(level) <= gst_debug_category_get_threshold(CAT(self));
      },
      [self](procaudio::LogLevel level, const char *file, int line, const char *text) {
        gst_debug_log(CAT(self), to_gst_level(level), file, "backend", line, G_OBJECT(self), "%s",
                      text);
      });
}

struct GstErrorCode {
  GQuark domain;
  gint code;
};

GstErrorCode to_gst_error(ErrorKind kind) {
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

// Posts `error` on the bus as a GStreamer error message, OS detail in the debug string.
void post_error(GstProcAudioSrc *self, const CaptureError &error, const char *function, int line) {
  const GstErrorCode code = to_gst_error(error.kind);
  SRC_ERROR(self, "%s (%s)", error.message.c_str(), error.detail.c_str());
  gst_element_message_full(GST_ELEMENT(self), GST_MESSAGE_ERROR, code.domain, code.code,
                           g_strdup(error.message.c_str()), g_strdup(error.detail.c_str()),
                           __FILE__, function, line);
}
#define POST_ERROR(self, error) post_error(self, error, GST_FUNCTION, __LINE__)

bool is_running(GstProcAudioSrc *self) {
  return STATE(self)->backend != nullptr;
}

GstStructure *make_stats(GstProcAudioSrc *self) {
  const procaudio::EngineStats s = STATE(self)->engine.stats();
  return gst_structure_new(
      "procaudio-stats", "packets", G_TYPE_UINT64, s.packets, "frames-captured", G_TYPE_UINT64,
      s.frames_captured, "frames-silent", G_TYPE_UINT64, s.frames_silent, "frames-gap-filled",
      G_TYPE_UINT64, s.frames_gap_filled, "frames-dropped", G_TYPE_UINT64, s.frames_dropped,
      "frames-pushed", G_TYPE_UINT64, s.frames_pushed, "discontinuities", G_TYPE_UINT64,
      s.discontinuities, "resyncs", G_TYPE_UINT64, s.resyncs, "chunks-pushed", G_TYPE_UINT64,
      s.chunks_pushed, "latency-last", G_TYPE_UINT64, s.latency_last_ns, "latency-max",
      G_TYPE_UINT64, s.latency_max_ns, nullptr);
}

}  // namespace

// ---- GObject ----

static void gst_proc_audio_src_set_property(GObject *object, guint prop_id, const GValue *value,
                                            GParamSpec *pspec) {
  GstProcAudioSrc *self = GST_PROC_AUDIO_SRC(object);
  GstProcAudioSrcState *state = STATE(self);
  if (prop_id != PROP_STATS && is_running(self)) {
    // The target and the sizes are taken at READY->PAUSED; a later change would silently
    // not apply, so refuse it loudly instead.
    g_warning(
        "%s: '%s' cannot change while the element is running (PAUSED or PLAYING); "
        "set it in the NULL or READY state",
        GST_OBJECT_NAME(self), pspec->name);
    return;
  }
  ObjectLocker lock(self);
  switch (prop_id) {
    case PROP_PID:
      state->settings.pid = g_value_get_uint(value);
      break;
    case PROP_PROCESS_NAME: {
      const gchar *name = g_value_get_string(value);
      state->settings.process_name = name != nullptr ? name : "";
      break;
    }
    case PROP_MODE:
      state->settings.mode = static_cast<procaudio::TargetMode>(g_value_get_enum(value));
      break;
    case PROP_LATENCY_TIME:
      state->settings.latency_time_us = g_value_get_int64(value);
      break;
    case PROP_BUFFER_TIME:
      state->settings.buffer_time_us = g_value_get_int64(value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

static void gst_proc_audio_src_get_property(GObject *object, guint prop_id, GValue *value,
                                            GParamSpec *pspec) {
  GstProcAudioSrc *self = GST_PROC_AUDIO_SRC(object);
  GstProcAudioSrcState *state = STATE(self);
  if (prop_id == PROP_STATS) {
    g_value_take_boxed(value, make_stats(self));
    return;
  }
  ObjectLocker lock(self);
  switch (prop_id) {
    case PROP_PID:
      g_value_set_uint(value, state->settings.pid);
      break;
    case PROP_PROCESS_NAME:
      g_value_set_string(value, state->settings.process_name.empty()
                                    ? nullptr
                                    : state->settings.process_name.c_str());
      break;
    case PROP_MODE:
      g_value_set_enum(value, static_cast<gint>(state->settings.mode));
      break;
    case PROP_LATENCY_TIME:
      g_value_set_int64(value, state->settings.latency_time_us);
      break;
    case PROP_BUFFER_TIME:
      g_value_set_int64(value, state->settings.buffer_time_us);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

static void gst_proc_audio_src_init(GstProcAudioSrc *self) {
  auto *priv = static_cast<GstProcAudioSrcPrivate *>(gst_proc_audio_src_get_instance_private(self));
  priv->state = new GstProcAudioSrcState(make_logger(self));
  gst_audio_info_init(&priv->state->info);
  gst_base_src_set_live(GST_BASE_SRC(self), TRUE);
  gst_base_src_set_format(GST_BASE_SRC(self), GST_FORMAT_TIME);
}

static void gst_proc_audio_src_finalize(GObject *object) {
  GstProcAudioSrc *self = GST_PROC_AUDIO_SRC(object);
  auto *priv = static_cast<GstProcAudioSrcPrivate *>(gst_proc_audio_src_get_instance_private(self));
  delete priv->state;
  priv->state = nullptr;
  G_OBJECT_CLASS(gst_proc_audio_src_parent_class)->finalize(object);
}

// ---- Start / stop: READY <-> PAUSED ----

namespace {

procaudio::TargetSpec target_of(const Settings &settings) {
  procaudio::TargetSpec target;
  target.pid = settings.pid;
  target.process_name = settings.process_name;
  target.mode = settings.mode;
  return target;
}

CaptureError check_settings(const Settings &settings) {
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

}  // namespace

static gboolean gst_proc_audio_src_start(GstBaseSrc *basesrc) {
  GstProcAudioSrc *self = GST_PROC_AUDIO_SRC(basesrc);
  GstProcAudioSrcState *state = STATE(self);
  {
    ObjectLocker lock(self);
    state->active = state->settings;
  }
  if (CaptureError error = check_settings(state->active)) {
    POST_ERROR(self, error);
    return FALSE;
  }
  GstProcAudioSrcClass *klass = GST_PROC_AUDIO_SRC_GET_CLASS(self);
  std::unique_ptr<procaudio::CaptureBackend> backend(klass->create_backend(self, state->log));
  const procaudio::TargetSpec target = target_of(state->active);
  SRC_INFO(self, "opening capture of %s", target.describe().c_str());
  if (CaptureError error = backend->open(target)) {
    backend->close();
    POST_ERROR(self, error);
    return FALSE;
  }
  state->engine.reset_stats();
  state->have_format = false;
  state->capturing = false;
  state->backend = std::move(backend);
  return TRUE;
}

// With capture_mutex held. Ends the stream for a reader still waiting in create().
static void stop_capture(GstProcAudioSrc *self) {
  GstProcAudioSrcState *state = STATE(self);
  if (state->capturing) {
    state->backend->stop();
    state->capturing = false;
    state->engine.interrupt();
    SRC_DEBUG(self, "capture stopped");
  }
}

static gboolean gst_proc_audio_src_stop(GstBaseSrc *basesrc) {
  GstProcAudioSrc *self = GST_PROC_AUDIO_SRC(basesrc);
  GstProcAudioSrcState *state = STATE(self);
  std::lock_guard<std::mutex> lock(state->capture_mutex);
  if (state->backend) {
    stop_capture(self);
    state->backend->close();
    state->backend.reset();
  }
  return TRUE;
}

static GstStateChangeReturn gst_proc_audio_src_change_state(GstElement *element,
                                                            GstStateChange transition) {
  GstProcAudioSrc *self = GST_PROC_AUDIO_SRC(element);
  GstProcAudioSrcState *state = STATE(self);
  if (transition == GST_STATE_CHANGE_PAUSED_TO_PLAYING) {
    std::lock_guard<std::mutex> lock(state->capture_mutex);
    state->playing = true;
    state->capture_cond.notify_all();
  }
  const GstStateChangeReturn ret =
      GST_ELEMENT_CLASS(gst_proc_audio_src_parent_class)->change_state(element, transition);
  if (transition == GST_STATE_CHANGE_PLAYING_TO_PAUSED) {
    // Capture only while PLAYING; the next PLAYING starts a fresh stream (first buffer
    // DISCONT). A create() reading the old stream is woken and waits for that.
    std::lock_guard<std::mutex> lock(state->capture_mutex);
    state->playing = false;
    stop_capture(self);
  }
  return ret;
}

// ---- Caps ----

// Where downstream leaves the choice open: the backend's preferred format (the OS's own
// rate, so that it does not resample), else F32LE, 48000 Hz, stereo.
static GstCaps *gst_proc_audio_src_fixate(GstBaseSrc *basesrc, GstCaps *caps) {
  GstProcAudioSrcState *state = STATE(GST_PROC_AUDIO_SRC(basesrc));
  // The backend is set before the streaming thread starts and reset after it stopped.
  const procaudio::AudioFormat preferred =
      state->backend ? state->backend->preferred_format() : procaudio::AudioFormat{};
  const char *format = preferred.sample_format == procaudio::SampleFormat::kS16LE
                           ? GST_AUDIO_NE(S16)
                           : GST_AUDIO_NE(F32);
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
  return GST_BASE_SRC_CLASS(gst_proc_audio_src_parent_class)->fixate(basesrc, caps);
}

static gboolean gst_proc_audio_src_set_caps(GstBaseSrc *basesrc, GstCaps *caps) {
  GstProcAudioSrc *self = GST_PROC_AUDIO_SRC(basesrc);
  GstProcAudioSrcState *state = STATE(self);
  GstAudioInfo info;
  if (!gst_audio_info_from_caps(&info, caps)) {
    SRC_WARNING(self, "caps not understood: %" GST_PTR_FORMAT, caps);
    return FALSE;
  }
  procaudio::AudioFormat format;
  format.sample_format = GST_AUDIO_INFO_FORMAT(&info) == GST_AUDIO_FORMAT_S16LE
                             ? procaudio::SampleFormat::kS16LE
                             : procaudio::SampleFormat::kF32LE;
  format.rate = static_cast<uint32_t>(GST_AUDIO_INFO_RATE(&info));
  format.channels = static_cast<uint32_t>(GST_AUDIO_INFO_CHANNELS(&info));
  std::lock_guard<std::mutex> lock(state->capture_mutex);
  if (state->capturing && format != state->format) {
    SRC_DEBUG(self, "format changed: restarting capture");
    stop_capture(self);
  }
  state->info = info;
  state->format = format;
  state->have_format = true;
  SRC_INFO(self, "negotiated %" GST_PTR_FORMAT, caps);
  return TRUE;
}

// ---- Latency ----

static gboolean gst_proc_audio_src_query(GstBaseSrc *basesrc, GstQuery *query) {
  GstProcAudioSrc *self = GST_PROC_AUDIO_SRC(basesrc);
  GstProcAudioSrcState *state = STATE(self);
  if (GST_QUERY_TYPE(query) != GST_QUERY_LATENCY) {
    return GST_BASE_SRC_CLASS(gst_proc_audio_src_parent_class)->query(basesrc, query);
  }
  if (!state->backend || !state->have_format) {
    SRC_DEBUG(self, "latency query before the format is known");
    return FALSE;
  }
  const GstClockTime min_latency =
      state->active.latency_time_us * GST_USECOND + state->backend->latency_ns();
  // max >= min always: a backend slower than buffer-time would otherwise fail the pipeline.
  const GstClockTime max_latency =
      MAX(static_cast<GstClockTime>(state->active.buffer_time_us * GST_USECOND), min_latency);
  gst_query_set_latency(query, TRUE, min_latency, max_latency);
  SRC_DEBUG(self, "latency: min %" GST_TIME_FORMAT " max %" GST_TIME_FORMAT,
            GST_TIME_ARGS(min_latency), GST_TIME_ARGS(max_latency));
  return TRUE;
}

// ---- Streaming ----

static gboolean gst_proc_audio_src_unlock(GstBaseSrc *basesrc) {
  GstProcAudioSrc *self = GST_PROC_AUDIO_SRC(basesrc);
  SRC_DEBUG(self, "unlock");
  GstProcAudioSrcState *state = STATE(self);
  state->engine.set_flushing(true);
  std::lock_guard<std::mutex> lock(state->capture_mutex);
  state->capture_cond.notify_all();
  return TRUE;
}

static gboolean gst_proc_audio_src_unlock_stop(GstBaseSrc *basesrc) {
  GstProcAudioSrc *self = GST_PROC_AUDIO_SRC(basesrc);
  SRC_DEBUG(self, "unlock stop");
  STATE(self)->engine.set_flushing(false);
  return TRUE;
}

// With capture_mutex held.
static GstFlowReturn start_capture(GstProcAudioSrc *self) {
  GstProcAudioSrcState *state = STATE(self);
  if (!state->have_format) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("No audio format was negotiated."),
                      ("create() before set_caps()"));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  const uint32_t rate = state->format.rate;
  procaudio::CaptureConfig config;
  config.format = state->format;
  config.latency_ns = state->active.latency_time_us * GST_USECOND;
  config.buffer_ns = state->active.buffer_time_us * GST_USECOND;
  {
    procaudio::EngineSettings settings;
    settings.format = state->format;
    settings.chunk_frames = static_cast<uint32_t>(
        MAX(gst_util_uint64_scale_int(state->active.latency_time_us, rate, 1000000), 1));
    settings.capacity_frames =
        gst_util_uint64_scale_int(state->active.buffer_time_us, rate, 1000000);
    settings.alignment_threshold_ns = kAlignmentThresholdNs;
    settings.idle_margin_ns = state->backend->idle_margin_ns();
    if (settings != state->engine.settings()) {
      state->engine.configure(settings);
    }
  }
  state->engine.begin(state->mapper.monotonic_now());
  state->have_anchor = false;
  if (CaptureError error = state->backend->start(config, state->engine)) {
    POST_ERROR(self, error);
    return GST_FLOW_ERROR;
  }
  state->capturing = true;
  SRC_INFO(self, "capturing: %u Hz, %u channels, chunks of %u frames", rate, state->format.channels,
           state->engine.settings().chunk_frames);
  return GST_FLOW_OK;
}

// Stamps `buffer` per the timestamp contract: running time of the device capture time of its
// first frame, from sample offsets relative to an anchor that changes only at DISCONT.
static void stamp(GstProcAudioSrc *self, GstBuffer *buffer, const procaudio::Chunk &chunk) {
  GstProcAudioSrcState *state = STATE(self);
  const gint rate = GST_AUDIO_INFO_RATE(&state->info);
  if (!state->have_anchor || chunk.discont || chunk.anchor_offset != state->anchor_offset ||
      chunk.anchor_time_ns != state->anchor_time_ns) {
    GstClock *clock = gst_element_get_clock(GST_ELEMENT(self));
    state->mapper.calibrate(clock);
    if (clock != nullptr) {
      gst_object_unref(clock);
    }
    state->anchor_offset = chunk.anchor_offset;
    state->anchor_time_ns = chunk.anchor_time_ns;
    state->anchor_running_time =
        state->mapper.to_clock_time(chunk.anchor_time_ns) -
        static_cast<GstClockTimeDiff>(gst_element_get_base_time(GST_ELEMENT(self)));
    state->have_anchor = true;
  }
  const GstClockTimeDiff start =
      state->anchor_running_time + static_cast<GstClockTimeDiff>(gst_util_uint64_scale_int(
                                       chunk.offset - chunk.anchor_offset, GST_SECOND, rate));
  const GstClockTimeDiff end =
      state->anchor_running_time +
      static_cast<GstClockTimeDiff>(gst_util_uint64_scale_int(
          chunk.offset + chunk.frames - chunk.anchor_offset, GST_SECOND, rate));
  // Frames captured before PLAYING began clip to running time 0.
  const GstClockTime pts = start > 0 ? static_cast<GstClockTime>(start) : 0;
  GST_BUFFER_PTS(buffer) = pts;
  GST_BUFFER_DTS(buffer) = GST_CLOCK_TIME_NONE;
  GST_BUFFER_DURATION(buffer) = end > static_cast<GstClockTimeDiff>(pts) ? end - pts : 0;
  GST_BUFFER_OFFSET(buffer) = chunk.offset;
  GST_BUFFER_OFFSET_END(buffer) = chunk.offset + chunk.frames;
  if (chunk.discont) {
    GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DISCONT);
  }
  if (chunk.gap) {
    GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_GAP);
  }
}

static void post_overflow_qos(GstProcAudioSrc *self, GstBuffer *buffer,
                              const procaudio::Chunk &chunk) {
  const procaudio::EngineStats stats = STATE(self)->engine.stats();
  SRC_WARNING(self,
              "the streaming thread fell behind: %" G_GUINT64_FORMAT
              " frames dropped (%" G_GUINT64_FORMAT " in all); raise buffer-time",
              chunk.dropped_frames, stats.frames_dropped);
  GstMessage *qos =
      gst_message_new_qos(GST_OBJECT(self), TRUE, GST_BUFFER_PTS(buffer), GST_CLOCK_TIME_NONE,
                          GST_BUFFER_PTS(buffer), GST_BUFFER_DURATION(buffer));
  gst_message_set_qos_stats(qos, GST_FORMAT_DEFAULT, stats.frames_pushed, stats.frames_dropped);
  gst_element_post_message(GST_ELEMENT(self), qos);
}

// A buffer with room for one whole chunk, from the negotiated allocator.
static GstBuffer *allocate_chunk(GstProcAudioSrc *self) {
  GstProcAudioSrcState *state = STATE(self);
  const gsize size =
      gsize{state->engine.settings().chunk_frames} * GST_AUDIO_INFO_BPF(&state->info);
  GstAllocator *allocator = nullptr;
  GstAllocationParams params;
  gst_base_src_get_allocator(GST_BASE_SRC(self), &allocator, &params);
  GstBuffer *buffer = gst_buffer_new_allocate(allocator, size, &params);
  if (allocator != nullptr) {
    gst_object_unref(allocator);
  }
  if (buffer == nullptr) {
    GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("Out of memory."),
                      ("could not allocate a buffer of %" G_GSIZE_FORMAT " bytes", size));
  }
  return buffer;
}

static GstFlowReturn gst_proc_audio_src_create(GstPushSrc *pushsrc, GstBuffer **out) {
  GstProcAudioSrc *self = GST_PROC_AUDIO_SRC(pushsrc);
  GstProcAudioSrcState *state = STATE(self);
  GstBuffer *buffer = nullptr;
  procaudio::Chunk chunk;
  procaudio::CaptureEngine::ReadStatus status;
  for (;;) {
    uint64_t stream = 0;
    {
      std::unique_lock<std::mutex> lock(state->capture_mutex);
      state->capture_cond.wait(lock,
                               [state] { return state->playing || state->engine.flushing(); });
      if (state->engine.flushing()) {
        return GST_FLOW_FLUSHING;
      }
      if (!state->capturing) {
        const GstFlowReturn ret = start_capture(self);
        if (ret != GST_FLOW_OK) {
          return ret;
        }
      }
      stream = state->engine.stream_id();
    }
    // Allocated after start_capture(): a fresh stream may have a new chunk size.
    if ((buffer = allocate_chunk(self)) == nullptr) {
      return GST_FLOW_ERROR;
    }
    GstMapInfo map;
    gst_buffer_map(buffer, &map, GST_MAP_WRITE);
    status = state->engine.read(chunk, map.data, stream);
    gst_buffer_unmap(buffer, &map);
    if (status != procaudio::CaptureEngine::ReadStatus::kFlushing || state->engine.flushing()) {
      break;
    }
    gst_buffer_unref(buffer);
    SRC_DEBUG(self, "paused: waiting for PLAYING to start a fresh stream");
  }

  switch (status) {
    case procaudio::CaptureEngine::ReadStatus::kChunk:
      break;
    case procaudio::CaptureEngine::ReadStatus::kFlushing:
      gst_buffer_unref(buffer);
      SRC_DEBUG(self, "flushing");
      return GST_FLOW_FLUSHING;
    case procaudio::CaptureEngine::ReadStatus::kEnded:
      gst_buffer_unref(buffer);
      SRC_INFO(self, "the target exited: end of stream");
      return GST_FLOW_EOS;
    case procaudio::CaptureEngine::ReadStatus::kFailed:
      gst_buffer_unref(buffer);
      POST_ERROR(self, state->engine.error());
      return GST_FLOW_ERROR;
  }

  gst_buffer_set_size(buffer, gsize{chunk.frames} * GST_AUDIO_INFO_BPF(&state->info));
  stamp(self, buffer, chunk);
  if (chunk.dropped_frames > 0) {
    post_overflow_qos(self, buffer, chunk);
  }
  SRC_LOG_(self, "chunk offset %" G_GUINT64_FORMAT " frames %u pts %" GST_TIME_FORMAT "%s%s",
           chunk.offset, chunk.frames, GST_TIME_ARGS(GST_BUFFER_PTS(buffer)),
           chunk.discont ? " DISCONT" : "", chunk.gap ? " GAP" : "");
  state->engine.note_pushed(chunk, state->mapper.monotonic_now());
  *out = buffer;
  return GST_FLOW_OK;
}

// ---- Class ----

static void gst_proc_audio_src_class_init(GstProcAudioSrcClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GstBaseSrcClass *basesrc_class = GST_BASE_SRC_CLASS(klass);
  GstPushSrcClass *pushsrc_class = GST_PUSH_SRC_CLASS(klass);

  GST_DEBUG_CATEGORY_INIT(gst_proc_audio_src_debug, "procaudiosrc", 0,
                          "Process audio source base class");
  klass->debug_category = gst_proc_audio_src_debug;

  gobject_class->set_property = gst_proc_audio_src_set_property;
  gobject_class->get_property = gst_proc_audio_src_get_property;
  gobject_class->finalize = gst_proc_audio_src_finalize;

  const auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                              GST_PARAM_MUTABLE_READY);
  g_object_class_install_property(
      gobject_class, PROP_PID,
      g_param_spec_uint("pid", "Process ID",
                        "Process whose audio to capture (0 = none). Checked when the element "
                        "goes to PAUSED: a pid that does not exist fails that state change. "
                        "Set this or process-name, not both",
                        0, G_MAXINT32, 0, flags));
  g_object_class_install_property(
      gobject_class, PROP_PROCESS_NAME,
      g_param_spec_string("process-name", "Process name",
                          "Executable name of the process to capture (e.g. \"firefox\", "
                          "\"chrome.exe\"), resolved when the element goes to PAUSED; several "
                          "matches pick the oldest. Set this or pid, not both",
                          nullptr, flags));
  g_object_class_install_property(
      gobject_class, PROP_MODE,
      g_param_spec_enum("mode", "Mode",
                        "Capture the target's process tree (include-tree) or every process "
                        "except it (exclude-tree). With no target: every process except this one",
                        GST_TYPE_PROC_AUDIO_MODE,
                        static_cast<gint>(procaudio::TargetMode::kIncludeTree), flags));
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
          "buffers), resyncs, chunks-pushed, latency-last and latency-max (ns from a chunk's "
          "arrival to its push)",
          GST_TYPE_STRUCTURE, static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));

  element_class->change_state = gst_proc_audio_src_change_state;
  basesrc_class->start = gst_proc_audio_src_start;
  basesrc_class->stop = gst_proc_audio_src_stop;
  basesrc_class->fixate = gst_proc_audio_src_fixate;
  basesrc_class->set_caps = gst_proc_audio_src_set_caps;
  basesrc_class->query = gst_proc_audio_src_query;
  basesrc_class->unlock = gst_proc_audio_src_unlock;
  basesrc_class->unlock_stop = gst_proc_audio_src_unlock_stop;
  pushsrc_class->create = gst_proc_audio_src_create;

  gst_type_mark_as_plugin_api(GST_TYPE_PROC_AUDIO_SRC, static_cast<GstPluginAPIFlags>(0));
  gst_type_mark_as_plugin_api(GST_TYPE_PROC_AUDIO_MODE, static_cast<GstPluginAPIFlags>(0));
}

void gst_proc_audio_src_class_set_formats(GstProcAudioSrcClass *klass,
                                          const procaudio::FormatCaps &formats) {
  GstCaps *caps = gst_caps_new_empty();
  for (procaudio::SampleFormat sample_format : formats.sample_formats) {
    GstStructure *s = gst_structure_new("audio/x-raw", "format", G_TYPE_STRING,
                                        procaudio::sample_format_name(sample_format), "layout",
                                        G_TYPE_STRING, "interleaved", nullptr);
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
  GstPadTemplate *templ = gst_pad_template_new("src", GST_PAD_SRC, GST_PAD_ALWAYS, caps);
  gst_element_class_add_pad_template(GST_ELEMENT_CLASS(klass), templ);
  gst_caps_unref(caps);
}
