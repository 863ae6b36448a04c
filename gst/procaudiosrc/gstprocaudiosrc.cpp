// SPDX-License-Identifier: LGPL-2.1-or-later
// GstProcAudioSrc: see gstprocaudiosrc.h and docs/architecture.md.
//
// Threads: the application thread sets properties and changes state; the capture thread
// (the backend's) feeds the engine; the streaming thread runs create(), which waits on the
// engine's condition and never polls.
#include "gstprocaudiosrc.h"

#include <gst/audio/audio.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "buffer_stamper.h"
#include "chunk_pool.h"
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
  // What start() took: written there, before the streaming thread runs; read-only after.
  Settings active;

  procaudio::CaptureEngine engine;  // thread-safe by its own contract (capture_engine.h)
  const procaudio::Logger log;
  // From start() to stop(), both of which set it with capture_mutex held. Read with it held,
  // or from the streaming thread, which runs only in between.
  std::unique_ptr<procaudio::CaptureBackend> backend;

  // Capture runs only while PLAYING; a pause ends the stream and the next PLAYING starts a
  // fresh one. GstBaseSrc (1.22) neither unlocks nor wakes a create() blocked in a read on
  // PLAYING->PAUSED, and a create() that returned FLUSHING then would leave its task paused
  // (tests/element/test_basesrc_live.cpp shows both): so change_state() ends the stream
  // itself, and create() waits for PLAYING inside, in gst_base_src_wait_playing(). Its own
  // `playing` flag closes the race GstBaseSrc's live_running (under a lock it keeps to
  // itself) would leave: a capture started in create() just after the pause stopped it.
  // Guards `playing`, `capturing`, backend start/stop and `format` below, which a latency
  // query reads from any thread.
  std::mutex capture_mutex;
  bool playing = false;
  bool capturing = false;

  std::optional<procaudio::AudioFormat> format;  // negotiated (set_caps); none before

  procaudio::BufferStamper stamper;  // streaming thread
  // The engine's live latency the last latency query answered with: when the engine's grows
  // past it, the streaming thread posts a LATENCY message so that the pipeline asks again.
  std::atomic<uint64_t> reported_live_latency_ns{0};
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

// From any thread (set_property comes from the application's).
bool is_running(GstProcAudioSrc *self) {
  GstProcAudioSrcState *state = STATE(self);
  std::lock_guard<std::mutex> lock(state->capture_mutex);
  return state->backend != nullptr;
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
  state->format.reset();
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
    state->playing = true;  // before GstBaseSrc lets gst_base_src_wait_playing() return
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
  if (state->capturing && state->format != format) {
    SRC_DEBUG(self, "format changed: restarting capture");
    stop_capture(self);
  }
  state->format = format;
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
  if (!state->backend || !state->format) {
    SRC_DEBUG(self, "latency query before the format is known");
    return FALSE;
  }
  // Clause 7: every buffer, idle fill included, is pushed by PTS + DURATION + min latency.
  const uint64_t live_latency = state->engine.live_latency_ns();
  state->reported_live_latency_ns.store(live_latency);
  const GstClockTime min_latency = state->active.latency_time_us * GST_USECOND + live_latency;
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
  state->engine.set_flushing(true);  // GstBaseSrc wakes gst_base_src_wait_playing() itself
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
  if (!state->format) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("No audio format was negotiated."),
                      ("create() before set_caps()"));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  const uint32_t rate = state->format->rate;
  procaudio::CaptureConfig config;
  config.format = *state->format;
  config.buffer_ns = state->active.buffer_time_us * GST_USECOND;
  {
    procaudio::EngineSettings settings;
    settings.format = *state->format;
    settings.chunk_frames =
        static_cast<uint32_t>(procaudio::chunk_frames_for(state->active.latency_time_us, rate));
    settings.capacity_frames =
        gst_util_uint64_scale_int(state->active.buffer_time_us, rate, 1000000);
    settings.alignment_threshold_ns = kAlignmentThresholdNs;
    settings.idle_margin_ns = state->backend->idle_margin_ns();
    settings.packet_period_ns = state->backend->latency_ns();
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
  SRC_INFO(self, "capturing: %u Hz, %u channels, chunks of %u frames", rate,
           state->format->channels, state->engine.settings().chunk_frames);
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

// ---- Allocation: a pool of chunk-sized buffers ----

static gboolean gst_proc_audio_src_decide_allocation(GstBaseSrc *basesrc, GstQuery *query) {
  GstProcAudioSrcState *state = STATE(GST_PROC_AUDIO_SRC(basesrc));
  GstCaps *caps = nullptr;
  gst_query_parse_allocation(query, &caps, nullptr);
  GstAudioInfo info;
  if (caps != nullptr && gst_audio_info_from_caps(&info, caps)) {
    procaudio::want_chunk_pool(
        query, procaudio::chunk_frames_for(state->active.latency_time_us, info.rate) * info.bpf);
  }
  return GST_BASE_SRC_CLASS(gst_proc_audio_src_parent_class)->decide_allocation(basesrc, query);
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
      if (state->engine.flushing()) {
        return GST_FLOW_FLUSHING;
      }
      if (!state->playing) {
        lock.unlock();
        const GstFlowReturn ret = gst_base_src_wait_playing(GST_BASE_SRC(self));
        if (ret != GST_FLOW_OK) {
          return ret;
        }
        continue;
      }
      if (!state->capturing) {
        const GstFlowReturn ret = start_capture(self);
        if (ret != GST_FLOW_OK) {
          return ret;
        }
      }
      stream = state->engine.stream_id();
    }
    // Acquired after start_capture(): a fresh stream may have a new chunk size.
    const procaudio::EngineSettings &settings = state->engine.settings();
    const GstFlowReturn ret = procaudio::acquire_chunk(
        GST_BASE_SRC(self), gsize{settings.chunk_frames} * settings.format.bytes_per_frame(),
        &buffer);
    if (ret != GST_FLOW_OK) {
      return ret;
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

  const procaudio::AudioFormat &format = state->engine.settings().format;
  gst_buffer_set_size(buffer, gsize{chunk.frames} * format.bytes_per_frame());
  state->stamper.stamp(GST_ELEMENT(self), buffer, chunk, format.rate,
                       state->active.reference_timestamp);
  if (chunk.dropped_frames > 0) {
    post_overflow_qos(self, buffer, chunk);
  }
  const uint64_t live_latency = state->engine.live_latency_ns();
  uint64_t reported = state->reported_live_latency_ns.load();
  if (reported != 0 && live_latency > reported &&
      state->reported_live_latency_ns.compare_exchange_strong(reported, live_latency)) {
    SRC_INFO(self,
             "packets come later than the latency reported: min latency now %" GST_TIME_FORMAT,
             GST_TIME_ARGS(state->active.latency_time_us * GST_USECOND + live_latency));
    gst_element_post_message(GST_ELEMENT(self), gst_message_new_latency(GST_OBJECT(self)));
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
  basesrc_class->decide_allocation = gst_proc_audio_src_decide_allocation;
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
