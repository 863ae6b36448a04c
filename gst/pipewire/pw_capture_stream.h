// SPDX-License-Identifier: LGPL-2.1-or-later
// One backend's own capture stream: a pw_stream (INPUT, FL + FR ports) that the backend's
// links feed, in the format start() asked for. Its RT process callback turns PipeWire's
// buffers into Packets (graph-clock times, corrected for the resampler's delay; a mono
// capture is downmixed here) and hands them to the sink.
//
// The sink is called on the shared data loop only: packets (PW_STREAM_FLAG_RT_PROCESS), and
// the target's states and exit, the idle ticks and errors, which are marshalled onto it, so
// this stream's sink calls are serialized by construction; arm() and stop() bracket them.
// Cycles while nothing of the target is linked (feed()), or before the state that says it is
// captured (post_state()), are idle, not zeros.
// Threads: the caller (prepare()), the thread loop (everything else, with its lock held) and
// the data loop (the callbacks; no lock there). No GStreamer.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "core/capture_backend.h"
#include "core/logger.h"
#include "pw_connection.h"

namespace procaudio {
namespace pipewire {

class CaptureStream final : public Connection::IdleClient {
 public:
  // Called with the thread loop locked.
  class Events {
   public:
    virtual ~Events() = default;
    // The stream's node is `id` now (SPA_ID_INVALID: it has none any more).
    virtual void on_node_id(uint32_t id) = 0;
  };

  CaptureStream(const Logger &log, Events &events) : log_(log), events_(events) {}
  CaptureStream(const CaptureStream &) = delete;
  CaptureStream &operator=(const CaptureStream &) = delete;

  // Caller thread, while not started: the connection the stream is made on and its errors
  // are raised on (open() to close(); null: none).
  void set_connection(Connection *conn) { conn_ = conn; }

  // Caller thread, before the lock is taken to start: the format, and a clean slate.
  void prepare(const CaptureConfig &config);
  // Caller thread, while not started: how many links feed the stream (null: always fed).
  void feed(const std::atomic<uint32_t> *live_links) { feed_ = live_links; }

  // ---- thread loop locked
  // Makes the pw_stream: `who` describes the target, `target_pid` is its root (0: none).
  CaptureError create(const std::string &who, uint32_t target_pid);
  // From now on the sink gets what the data loop has for it: packets, idle ticks, errors,
  // states and the target's exit.
  void arm(CaptureSink &sink);
  // Hands the sink a target state, after everything the data loop has delivered so far;
  // nothing while not armed.
  void post_state(const TargetState &state);
  // Hands the sink the target's exit (the end of the stream), after the states posted.
  void post_target_exit();
  // Connects the stream and waits until it is ready (or failed).
  CaptureError connect();
  // Destroys the stream; once this returns the sink is never called again.
  void stop();
  // Hands a fatal error to the sink, on the data loop. First error wins.
  void raise_error(CaptureError error);
  // The stream's node (SPA_ID_INVALID: none).
  uint32_t node_id() const { return node_id_; }

  // ---- any thread
  uint64_t quantum_ns() const { return quantum_ns_.load(); }
  // A cycle's frames arrive when the graph has run the cycle, well within this of its start.
  static constexpr uint64_t kIdleMarginNs = 5'000'000;

 private:
  static constexpr uint64_t kNsPerSec = 1'000'000'000ull;
  // Before the first packet says otherwise: PipeWire's default quantum.
  static constexpr uint64_t kDefaultQuantumNs = 1024ull * kNsPerSec / 48000;

  struct Arm {
    CaptureStream *self;
    CaptureSink *sink;
  };

  void set_node_id(uint32_t id);

  // ---- stream events (thread loop)
  static void on_stream_state(void *data, enum pw_stream_state old, enum pw_stream_state state,
                              const char *error);
  static void on_stream_param_changed(void *data, uint32_t id, const struct spa_pod *param);

  // ---- data loop
  static void on_process(void *data);
  void deliver(pw_buffer **buffers, int count, uint64_t arrival);
  void downmix(const uint8_t *in, uint32_t frames);
  void on_idle_tick(uint64_t now) override;
  void arm_tick();  // for the sink's idle deadline
  void queue_on_data_loop(spa_invoke_func_t func, const void *data, size_t size, const char *what);
  static int deliver_state(struct spa_loop *, bool, uint32_t, const void *data, size_t, void *user);
  static int deliver_target_exit(struct spa_loop *, bool, uint32_t, const void *, size_t,
                                 void *user);
  static int deliver_error(struct spa_loop *, bool, uint32_t, const void *, size_t, void *user);
  static int do_arm(struct spa_loop *, bool, uint32_t, const void *data, size_t, void *);
  static int do_disarm(struct spa_loop *, bool, uint32_t, const void *, size_t, void *user);

  const Logger &log_;
  Events &events_;
  Connection *conn_ = nullptr;                   // caller thread, read-only while started
  const std::atomic<uint32_t> *feed_ = nullptr;  // caller thread, read on the data loop

  // ---- own PipeWire state; touched with the connection's thread loop locked
  pw_stream *stream_ = nullptr;
  spa_hook stream_listener_{};
  // The format the server settled on (param_changed): what we asked for, or not. The
  // stream's state and error are pw_stream_get_state()'s, not kept here.
  enum class Negotiation { kPending, kAccepted, kRefused };
  Negotiation format_ = Negotiation::kPending;
  uint32_t node_id_ = SPA_ID_INVALID;
  bool capturing_ = false;  // between arm() and stop(): the stream's failures are errors

  // ---- data loop state: only touched on the data loop thread (or before it can run)
  CaptureSink *sink_ = nullptr;
  bool finished_ = false;
  bool attached_ = false;  // the last state delivered was kCapturing
  CaptureConfig config_;   // its channels are what the sink gets (1: our downmix of FL + FR)
  std::vector<uint8_t> scratch_;
  std::atomic<uint64_t> quantum_ns_{kDefaultQuantumNs};

  // An error found on the thread loop, waiting for the data loop to hand it to the sink.
  std::mutex error_mutex_;
  CaptureError pending_error_;
};

}  // namespace pipewire
}  // namespace procaudio
