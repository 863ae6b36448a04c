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

#include "buffer_stamper.h"
#include "core/capture_engine.h"
#include "gstprocaudio-utils.h"
#include "object_locker.h"
#include "properties.h"

using procaudio::CaptureError;
using procaudio::ErrorKind;
using procaudio::ObjectLocker;
using procaudio::Settings;

GST_DEBUG_CATEGORY_STATIC(gst_proc_audio_src_debug);

namespace {

constexpr guint64 kAlignmentThresholdNs = 40 * GST_MSECOND;

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
  // Guards `playing`, `capturing`, backend start/stop, and the negotiated format below,
  // which a latency query reads from any thread.
  std::mutex capture_mutex;
  std::condition_variable capture_cond;
  bool playing = false;
  bool capturing = false;

  GstAudioInfo info;
  bool have_format = false;
  procaudio::AudioFormat format;

  procaudio::BufferStamper stamper;  // streaming thread
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

namespace {

GstDebugCategory *category_of(GObject *object) {
  return GST_PROC_AUDIO_SRC_GET_CLASS(object)->debug_category;
}

#define POST_ERROR(self, error) \
  procaudio::post_capture_error(GST_ELEMENT(self), CAT(self), error, GST_FUNCTION, __LINE__)

bool is_running(GstProcAudioSrc *self) {
  return STATE(self)->backend != nullptr;
}

// The target-state changes that hold from before `before_offset`, as element messages: posted
// as the chunk they apply to is pushed, not when the capture thread saw them, so that an
// application never hears "exited" while the target's last audio is still on its way.
void post_target_states(GstProcAudioSrc *self, uint64_t before_offset) {
  GstProcAudioSrcState *state = STATE(self);
  for (const auto &[offset, t] : state->engine.take_target_states(before_offset)) {
    SRC_INFO(self, "target %s: pid %u, %u stream(s), from offset %" G_GUINT64_FORMAT,
             procaudio::target_phase_name(t.phase), t.pid, t.streams, offset);
    gst_element_post_message(
        GST_ELEMENT(self),
        procaudio::target_message(GST_OBJECT(self), t, offset, state->active.process_name));
  }
}

}  // namespace

// ---- GObject ----

static void gst_proc_audio_src_set_property(GObject *object, guint prop_id, const GValue *value,
                                            GParamSpec *pspec) {
  GstProcAudioSrc *self = GST_PROC_AUDIO_SRC(object);
  GstProcAudioSrcState *state = STATE(self);
  if (prop_id != procaudio::PROP_STATS && is_running(self)) {
    // The target and the sizes are taken at READY->PAUSED; a later change would silently
    // not apply, so refuse it loudly instead.
    g_warning(
        "%s: '%s' cannot change while the element is running (PAUSED or PLAYING); "
        "set it in the NULL or READY state",
        GST_OBJECT_NAME(self), pspec->name);
    return;
  }
  ObjectLocker lock(self);
  if (!procaudio::set_setting(state->settings, prop_id, value)) {
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void gst_proc_audio_src_get_property(GObject *object, guint prop_id, GValue *value,
                                            GParamSpec *pspec) {
  GstProcAudioSrc *self = GST_PROC_AUDIO_SRC(object);
  GstProcAudioSrcState *state = STATE(self);
  if (prop_id == procaudio::PROP_STATS) {
    g_value_take_boxed(value, procaudio::stats_structure(state->engine.stats()));
    return;
  }
  ObjectLocker lock(self);
  if (!procaudio::get_setting(state->settings, prop_id, value)) {
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void gst_proc_audio_src_init(GstProcAudioSrc *self) {
  auto *priv = static_cast<GstProcAudioSrcPrivate *>(gst_proc_audio_src_get_instance_private(self));
  priv->state = new GstProcAudioSrcState(procaudio::element_logger(G_OBJECT(self), category_of));
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
  std::lock_guard<std::mutex> lock(state->capture_mutex);
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
  caps = procaudio::fixate_to(caps, preferred);
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
  if (!procaudio::audio_format_of(info, format)) {
    SRC_WARNING(self, "caps not F32LE/S16LE interleaved: %" GST_PTR_FORMAT, caps);
    return FALSE;
  }
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
  // The application's thread asks while the streaming thread negotiates or a state change
  // replaces the backend.
  std::lock_guard<std::mutex> lock(state->capture_mutex);
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
  state->engine.begin(state->stamper.monotonic_now());
  state->stamper.reset();
  if (CaptureError error = state->backend->start(config, state->engine)) {
    POST_ERROR(self, error);
    return GST_FLOW_ERROR;
  }
  state->capturing = true;
  SRC_INFO(self, "capturing: %u Hz, %u channels, chunks of %u frames", rate, state->format.channels,
           state->engine.settings().chunk_frames);
  return GST_FLOW_OK;
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

  post_target_states(self, status == procaudio::CaptureEngine::ReadStatus::kChunk
                               ? chunk.offset + chunk.frames
                               : UINT64_MAX);
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
  state->stamper.stamp(GST_ELEMENT(self), buffer, chunk,
                       static_cast<uint32_t>(GST_AUDIO_INFO_RATE(&state->info)),
                       state->active.reference_timestamp);
  if (chunk.dropped_frames > 0) {
    post_overflow_qos(self, buffer, chunk);
  }
  SRC_LOG_(self, "chunk offset %" G_GUINT64_FORMAT " frames %u pts %" GST_TIME_FORMAT "%s%s",
           chunk.offset, chunk.frames, GST_TIME_ARGS(GST_BUFFER_PTS(buffer)),
           chunk.discont ? " DISCONT" : "", chunk.gap ? " GAP" : "");
  state->engine.note_pushed(chunk, state->stamper.monotonic_now());
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

  procaudio::install_properties(gobject_class);

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
  gst_type_mark_as_plugin_api(GST_TYPE_PROC_AUDIO_ON_TARGET_EXIT,
                              static_cast<GstPluginAPIFlags>(0));
}

void gst_proc_audio_src_class_set_formats(GstProcAudioSrcClass *klass,
                                          const procaudio::FormatCaps &formats) {
  GstCaps *caps = procaudio::caps_for(formats);
  GstPadTemplate *templ = gst_pad_template_new("src", GST_PAD_SRC, GST_PAD_ALWAYS, caps);
  gst_element_class_add_pad_template(GST_ELEMENT_CLASS(klass), templ);
  gst_caps_unref(caps);
}
