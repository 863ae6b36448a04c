// SPDX-License-Identifier: LGPL-2.1-or-later
#include "pw_capture_stream.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "core/monotonic_clock.h"
#include "process_util.h"

#include <spa/param/audio/format-utils.h>
#include <spa/param/audio/raw.h>
#include <spa/pod/builder.h>
#include <spa/utils/result.h>

namespace procaudio {
namespace pipewire {

namespace {

// Frames of the mono downmix scratch buffer (a PipeWire buffer larger than this is delivered
// in pieces).
constexpr uint32_t kScratchFrames = 65536;
// Buffers taken from the stream in one process call (one, unless a call came late).
constexpr int kMaxBuffersPerCycle = 16;

}  // namespace

void CaptureStream::prepare(const CaptureConfig &config) {
  config_ = config;
  scratch_.assign(config.format.channels == 1 ? kScratchFrames * 4 : 0, 0);
  {
    std::lock_guard<std::mutex> lock(error_mutex_);
    pending_error_ = {};
  }
  quantum_ns_ = kDefaultQuantumNs;
}

void CaptureStream::set_node_id(uint32_t id) {
  if (id == node_id_) {
    return;
  }
  node_id_ = id;
  events_.on_node_id(id);
}

// ------------------------------------------------------------------------------------------
// Life cycle (thread loop locked)

CaptureError CaptureStream::create(const std::string &who, uint32_t target_pid) {
  pw_properties *props =
      pw_properties_new(PW_KEY_MEDIA_TYPE, "Audio", PW_KEY_MEDIA_CATEGORY, "Capture",
                        PW_KEY_NODE_NAME, "procaudio-capture", PW_KEY_APP_NAME, "procaudio",
                        // Never linked by the session manager: no default-source fallback, not now,
                        // not when the target goes away, not after a restore.
                        PW_KEY_NODE_AUTOCONNECT, "false", "node.dont-reconnect", "true",
                        "state.restore-target", "false", "state.restore-props", "false",
                        // Keep running (and delivering silence) while no target is linked.
                        PW_KEY_NODE_ALWAYS_PROCESS, "true", PW_KEY_NODE_WANT_DRIVER, "true",
                        // Marks this node as a procaudio capture for anyone listing streams.
                        "procaudio.capture", "true", nullptr);
  pw_properties_setf(props, PW_KEY_NODE_DESCRIPTION, "procaudio capture: %s", who.c_str());
  if (target_pid != 0) {
    pw_properties_setf(props, "procaudio.target.pid", "%u", target_pid);
  }
  stream_ = pw_stream_new(conn_->core(), "procaudio-capture", props);
  if (stream_ == nullptr) {
    const int err = errno;
    return {ErrorKind::kFailed, "Cannot create a PipeWire capture stream.",
            "pw_stream_new: " + errno_text(err)};
  }
  static const pw_stream_events stream_events = [] {
    pw_stream_events events{};
    events.version = PW_VERSION_STREAM_EVENTS;
    events.state_changed = &CaptureStream::on_stream_state;
    events.param_changed = &CaptureStream::on_stream_param_changed;
    events.process = &CaptureStream::on_process;
    return events;
  }();
  pw_stream_add_listener(stream_, &stream_listener_, &stream_events, this);
  format_ = Negotiation::kPending;
  set_node_id(SPA_ID_INVALID);
  return {};
}

void CaptureStream::arm(CaptureSink &sink) {
  Arm arm{this, &sink};
  conn_->invoke(&CaptureStream::do_arm, &arm, sizeof arm, true, nullptr);
  capturing_ = true;
}

void CaptureStream::post_state(const TargetState &state) {
  if (capturing_) {
    queue_on_data_loop(&CaptureStream::deliver_state, &state, sizeof state, "a target state");
  }
}

void CaptureStream::post_target_exit() {
  if (capturing_) {
    queue_on_data_loop(&CaptureStream::deliver_target_exit, nullptr, 0, "the target's exit");
  }
}

void CaptureStream::queue_on_data_loop(spa_invoke_func_t func, const void *data, size_t size,
                                       const char *what) {
  const int res = conn_->invoke(func, data, size, false, this);
  if (res < 0) {
    // libspa's invoke queue is full (it holds thousands of these): the data loop is stuck.
    PROCAUDIO_ERROR(log_, "could not hand %s to the data loop: %s", what, spa_strerror(res));
  }
}

CaptureError CaptureStream::connect() {
  Connection &c = *conn_;
  uint8_t pod_buffer[1024];
  struct spa_pod_builder builder;
  spa_pod_builder_init(&builder, pod_buffer, sizeof pod_buffer);
  struct spa_audio_info_raw info;
  std::memset(&info, 0, sizeof info);
  info.format = config_.format.sample_format == SampleFormat::kF32LE ? SPA_AUDIO_FORMAT_F32_LE
                                                                     : SPA_AUDIO_FORMAT_S16_LE;
  info.rate = config_.format.rate;
  info.channels = 2;  // FL + FR ports; a mono capture is downmixed here (see downmix())
  info.position[0] = SPA_AUDIO_CHANNEL_FL;
  info.position[1] = SPA_AUDIO_CHANNEL_FR;
  const struct spa_pod *params[1] = {
      spa_format_audio_raw_build(&builder, SPA_PARAM_EnumFormat, &info)};

  const int res = pw_stream_connect(
      stream_, PW_DIRECTION_INPUT, PW_ID_ANY,
      static_cast<pw_stream_flags>(PW_STREAM_FLAG_MAP_BUFFERS | PW_STREAM_FLAG_RT_PROCESS |
                                   PW_STREAM_FLAG_DONT_RECONNECT),
      params, 1);
  CaptureError error;
  if (res < 0) {
    error = {ErrorKind::kFailed, "Cannot connect the PipeWire capture stream.",
             "pw_stream_connect: " + std::string(spa_strerror(res))};
  } else {
    // Ready when the server made our node and the session manager configured its ports.
    const char *stream_error = nullptr;
    pw_stream_state state = PW_STREAM_STATE_UNCONNECTED;
    const bool ready = c.wait_until(
        [this, &c, &state, &stream_error] {
          state = pw_stream_get_state(stream_, &stream_error);
          return c.lost() || state == PW_STREAM_STATE_ERROR || format_ == Negotiation::kRefused ||
                 (node_id_ != SPA_ID_INVALID && format_ == Negotiation::kAccepted &&
                  (state == PW_STREAM_STATE_PAUSED || state == PW_STREAM_STATE_STREAMING));
        },
        kServerTimeoutMs);
    const std::string why = stream_error != nullptr ? stream_error : "unknown error";
    if (c.lost()) {
      error = {ErrorKind::kDeviceLost, "The connection to PipeWire was lost while starting.",
               c.lost_error()};
    } else if (state == PW_STREAM_STATE_ERROR) {
      error = {ErrorKind::kFailed, "PipeWire refused the capture stream: " + why,
               "pw_stream state error: " + why};
    } else if (format_ == Negotiation::kRefused) {
      error = {ErrorKind::kFormatRefused,
               "PipeWire would not capture in the requested format (" +
                   std::to_string(config_.format.rate) + " Hz).",
               "negotiated format differs from the EnumFormat offered"};
    } else if (!ready) {
      error = {ErrorKind::kTimeout,
               "PipeWire did not set up the capture stream within 5 s: is a session manager "
               "(WirePlumber) running? Without one, streams get no ports.",
               std::string("pw_stream state ") + pw_stream_state_as_string(state) +
                   (format_ == Negotiation::kAccepted ? "" : ", no format") +
                   (node_id_ == SPA_ID_INVALID ? ", no node id" : "")};
    }
  }
  return error;
}

void CaptureStream::stop() {
  const bool was_capturing = capturing_ || stream_ != nullptr;
  capturing_ = false;
  if (stream_ != nullptr) {
    // Disconnect first: it takes the node off the data loop (a blocking invoke there), so the
    // process callback is not running when the listener goes. `capturing_` is false, so the
    // state change to UNCONNECTED is not reported as an error.
    pw_stream_disconnect(stream_);
    spa_hook_remove(&stream_listener_);
    pw_stream_destroy(stream_);
    stream_ = nullptr;
  }
  set_node_id(SPA_ID_INVALID);
  if (was_capturing) {
    // A barrier on the data loop: once it has run, no sink call is in flight or will follow.
    conn_->invoke(&CaptureStream::do_disarm, nullptr, 0, true, this);
  }
}

void CaptureStream::raise_error(CaptureError error) {
  {
    std::lock_guard<std::mutex> lock(error_mutex_);
    if (pending_error_) {
      return;
    }
    pending_error_ = std::move(error);
  }
  queue_on_data_loop(&CaptureStream::deliver_error, nullptr, 0, "an error");
}

// ------------------------------------------------------------------------------------------
// Stream events (thread loop)

void CaptureStream::on_stream_state(void *data, enum pw_stream_state old,
                                    enum pw_stream_state state, const char *error) {
  auto *self = static_cast<CaptureStream *>(data);
  PROCAUDIO_DEBUG(self->log_, "capture stream: %s -> %s%s%s", pw_stream_state_as_string(old),
                  pw_stream_state_as_string(state), error ? ": " : "", error ? error : "");
  if (state == PW_STREAM_STATE_ERROR) {
    if (self->capturing_) {
      const std::string why = error ? error : "unknown error";
      self->raise_error({ErrorKind::kDeviceLost, "PipeWire stopped the capture stream: " + why,
                         "pw_stream state error: " + why});
    }
  } else if (state == PW_STREAM_STATE_UNCONNECTED && self->capturing_ && old != state) {
    self->raise_error({ErrorKind::kDeviceLost,
                       "PipeWire disconnected the capture stream (the daemon went away?).",
                       "pw_stream state unconnected"});
  }
  if (state != PW_STREAM_STATE_CONNECTING && self->stream_ != nullptr) {
    const uint32_t id = pw_stream_get_node_id(self->stream_);
    if (id != SPA_ID_INVALID) {
      self->set_node_id(id);
    }
  }
  self->conn_->signal();
}

void CaptureStream::on_stream_param_changed(void *data, uint32_t id, const struct spa_pod *param) {
  auto *self = static_cast<CaptureStream *>(data);
  if (id != SPA_PARAM_Format || param == nullptr) {
    return;
  }
  struct spa_audio_info_raw info;
  std::memset(&info, 0, sizeof info);
  if (spa_format_audio_raw_parse(param, &info) < 0) {
    return;
  }
  const spa_audio_format want = self->config_.format.sample_format == SampleFormat::kF32LE
                                    ? SPA_AUDIO_FORMAT_F32_LE
                                    : SPA_AUDIO_FORMAT_S16_LE;
  const bool ok =
      info.format == want && info.rate == self->config_.format.rate && info.channels == 2;
  PROCAUDIO_DEBUG(self->log_, "capture stream format: %s, %u Hz, %u channels%s",
                  info.format == SPA_AUDIO_FORMAT_F32_LE   ? "F32LE"
                  : info.format == SPA_AUDIO_FORMAT_S16_LE ? "S16LE"
                                                           : "other",
                  info.rate, info.channels, ok ? "" : " (not what was asked)");
  self->format_ = ok ? Negotiation::kAccepted : Negotiation::kRefused;
  self->conn_->signal();
}

// ------------------------------------------------------------------------------------------
// Data loop

// RT: no allocation, no lock, no logging. Runs once per graph cycle. Usually one buffer is
// queued, this cycle's; if more ever are, all of them are taken now, the older ones stamped
// before this cycle: one a call would keep such a backlog for good, every buffer stamped a
// cycle later than its audio. (Taking one, as pw-cat does, the 2-minute soak once drifted by
// one quantum and re-anchored two quanta back at the end.)
void CaptureStream::on_process(void *data) {
  auto *self = static_cast<CaptureStream *>(data);
  pw_stream *stream = self->stream_;
  const uint64_t arrival = monotonic_now_ns();
  pw_buffer *buffers[kMaxBuffersPerCycle];
  int count = 0;
  while (pw_buffer *b = pw_stream_dequeue_buffer(stream)) {
    if (count < kMaxBuffersPerCycle) {
      buffers[count++] = b;
    } else {
      pw_stream_queue_buffer(stream, b);  // a backlog beyond this is dropped (and shows)
    }
  }
  if (count == 0) {
    return;
  }
  if (self->sink_ != nullptr && !self->finished_) {
    self->deliver(buffers, count, arrival);
    self->arm_tick();
  }
  for (int i = 0; i < count; ++i) {
    pw_stream_queue_buffer(stream, buffers[i]);
  }
}

void CaptureStream::deliver(pw_buffer **buffers, int count, uint64_t arrival) {
  const uint32_t rate = config_.format.rate;
  const uint32_t in_frame_bytes = bytes_per_sample(config_.format.sample_format) * 2;
  // Graph time of this cycle: when the driver started it, on CLOCK_MONOTONIC. The frames
  // that reach us now are the frames the graph renders in this cycle.
  struct pw_time time;
  std::memset(&time, 0, sizeof time);
  const bool have_time = pw_stream_get_time_n(stream_, &time, sizeof time) == 0 && time.now > 0;

  uint32_t frames[kMaxBuffersPerCycle];
  uint64_t total = 0;
  for (int i = 0; i < count; ++i) {
    const spa_buffer *buffer = buffers[i]->buffer;
    frames[i] = 0;
    if (buffer->n_datas == 0 || buffer->datas[0].data == nullptr ||
        buffer->datas[0].chunk == nullptr) {
      continue;
    }
    const spa_data &d = buffer->datas[0];
    const uint32_t offset = std::min(d.chunk->offset, d.maxsize);
    const uint32_t size = std::min(d.chunk->size, d.maxsize - offset);
    frames[i] = size / in_frame_bytes;
    total += frames[i];
  }
  if (total == 0) {
    return;
  }
  quantum_ns_.store(total * kNsPerSec / rate, std::memory_order_relaxed);
  if (!attached_ || (feed_ != nullptr && feed_->load(std::memory_order_relaxed) == 0)) {
    // Nothing of the target is linked to us (or its links came before the state that says
    // whose they are): these frames are the zeros PipeWire gives an input nobody feeds, not
    // audio anyone played. Idle, as process loopback is when its target plays nothing: the
    // engine fills GAP silence from the idle ticks.
    return;
  }
  // The last buffer starts at the cycle's time; earlier ones (a backlog) before it.
  // The resampler (when our rate differs from the graph's) holds `buffered` frames back, in
  // graph-rate frames (time.rate is 1/graph rate): our first frame is that much older.
  uint64_t start_ns;
  uint32_t flags = kPacketNone;
  if (have_time) {
    start_ns = static_cast<uint64_t>(time.now);
    const uint64_t resampler_ns =
        time.rate.denom != 0 ? time.buffered * kNsPerSec * time.rate.num / time.rate.denom : 0;
    start_ns -= std::min(start_ns, resampler_ns + (total - frames[count - 1]) * kNsPerSec / rate);
  } else {
    start_ns = arrival - std::min(arrival, total * kNsPerSec / rate);
    flags |= kPacketTimestampError;
  }
  // No discontinuity is made up here; device times are the graph clock's, as they are:
  //  - the quantum changes: a timer-driven graph schedules the next cycle with the duration it
  //    had when it scheduled, so the first cycle of a new quantum is followed after the *old*
  //    quantum: device times overlap (it grew) or leave a hole (it shrank) by the difference,
  //    once, and even out when the quantum changes back;
  //  - an overloaded graph: a cycle runs late (two packets then carry the same cycle time) or
  //    is skipped.
  // The timeline takes steps within its threshold as jitter and fills larger gaps. Only
  // PipeWire's own "corrupted" mark on a chunk is reported as a discontinuity.
  uint64_t device_ns = start_ns;
  for (int i = 0; i < count; ++i) {
    if (frames[i] == 0) {
      continue;
    }
    const spa_data &d = buffers[i]->buffer->datas[0];
    const uint32_t offset = std::min(d.chunk->offset, d.maxsize);
    const uint8_t *bytes = static_cast<const uint8_t *>(d.data) + offset;
    uint32_t chunk_flags = flags;
    if ((d.chunk->flags & SPA_CHUNK_FLAG_CORRUPTED) != 0) {
      chunk_flags |= kPacketDiscontinuity;
    }
    uint32_t done = 0;
    while (done < frames[i]) {
      const uint32_t n = config_.format.channels == 2 ? frames[i] - done
                                                      : std::min(frames[i] - done, kScratchFrames);
      Packet packet;
      packet.frames = n;
      packet.flags = chunk_flags;
      packet.device_time_ns = device_ns + static_cast<uint64_t>(done) * kNsPerSec / rate;
      packet.arrival_time_ns = arrival;
      if (config_.format.channels == 2) {
        packet.data = bytes + static_cast<size_t>(done) * in_frame_bytes;
      } else {
        downmix(bytes + static_cast<size_t>(done) * in_frame_bytes, n);
        packet.data = scratch_.data();
      }
      sink_->on_packet(packet);
      chunk_flags &= ~static_cast<uint32_t>(kPacketDiscontinuity);
      done += n;
    }
    device_ns += static_cast<uint64_t>(frames[i]) * kNsPerSec / rate;
    flags &= ~static_cast<uint32_t>(kPacketDiscontinuity);
  }
}

// Stereo -> mono, (L + R) / 2, into the scratch buffer allocated by prepare().
void CaptureStream::downmix(const uint8_t *in, uint32_t frames) {
  if (config_.format.sample_format == SampleFormat::kF32LE) {
    const float *src = reinterpret_cast<const float *>(in);
    float *dst = reinterpret_cast<float *>(scratch_.data());
    for (uint32_t i = 0; i < frames; ++i) {
      dst[i] = 0.5f * (src[2 * i] + src[2 * i + 1]);
    }
  } else {
    const int16_t *src = reinterpret_cast<const int16_t *>(in);
    int16_t *dst = reinterpret_cast<int16_t *>(scratch_.data());
    for (uint32_t i = 0; i < frames; ++i) {
      dst[i] = static_cast<int16_t>((static_cast<int32_t>(src[2 * i]) + src[2 * i + 1]) / 2);
    }
  }
}

int CaptureStream::deliver_state(struct spa_loop *, bool, uint32_t, const void *data, size_t,
                                 void *user) {
  auto *self = static_cast<CaptureStream *>(user);
  const auto &state = *static_cast<const TargetState *>(data);
  self->attached_ = state.phase == TargetState::Phase::kCapturing;
  if (self->sink_ != nullptr && !self->finished_) {
    self->sink_->on_target_state(state);
  }
  return 0;
}

int CaptureStream::deliver_target_exit(struct spa_loop *, bool, uint32_t, const void *, size_t,
                                       void *user) {
  auto *self = static_cast<CaptureStream *>(user);
  if (self->sink_ != nullptr && !self->finished_) {
    self->finished_ = true;
    self->sink_->on_target_exit();
  }
  return 0;
}

// From the connection's timer, once the sink's deadline passed (data loop). The sink decides
// what is due; this only asks it again when.
void CaptureStream::on_idle_tick(uint64_t now) {
  if (sink_ != nullptr && !finished_) {
    sink_->on_idle(now);
  }
  arm_tick();  // finished: never again
}

void CaptureStream::arm_tick() {
  conn_->arm_idle_tick(this,
                       sink_ != nullptr && !finished_ ? sink_->idle_deadline_ns() : UINT64_MAX);
}

int CaptureStream::deliver_error(struct spa_loop *, bool, uint32_t, const void *, size_t,
                                 void *user) {
  auto *self = static_cast<CaptureStream *>(user);
  CaptureError error;
  {
    std::lock_guard<std::mutex> lock(self->error_mutex_);
    error = self->pending_error_;
  }
  if (self->sink_ != nullptr && !self->finished_ && error) {
    self->finished_ = true;
    self->sink_->on_error(error);
  }
  return 0;
}

// On the data loop: start handing packets to the sink, tick when idle.
int CaptureStream::do_arm(struct spa_loop *, bool, uint32_t, const void *data, size_t, void *) {
  const Arm *arm = static_cast<const Arm *>(data);
  CaptureStream *self = arm->self;
  self->sink_ = arm->sink;
  self->finished_ = false;
  self->attached_ = false;  // until the first state says so
  self->arm_tick();
  return 0;
}

// On the data loop: after this returns, the sink is never called again.
int CaptureStream::do_disarm(struct spa_loop *, bool, uint32_t, const void *, size_t, void *user) {
  auto *self = static_cast<CaptureStream *>(user);
  self->sink_ = nullptr;
  self->finished_ = true;
  self->conn_->disarm_idle_tick(self);
  return 0;
}

}  // namespace pipewire
}  // namespace procaudio
