// SPDX-License-Identifier: LGPL-2.1-or-later
// CaptureEngine: what a backend's capture thread feeds (CaptureSink) and what the streaming
// thread reads chunks from. Producer side: Timeline -> FrameRing, never blocks, never
// allocates. Consumer side: blocks on a condition until a chunk, a flush, the end or an error.
//
// Live delivery (the timestamp contract's clause 7) is decided here, and only here. Every
// chunk must be readable by its end time plus live_latency_ns():
//  - real audio is, if it arrives within the idle margin of its first frame's time;
//  - while nothing arrives, the backend only ticks; a tick at `now` fills silence (GAP) up to
//    now - fill delay, in whole chunks, and idle_deadline_ns() says when the next chunk of
//    silence is due, so that the backend's timer fires then and not on a fixed period. A
//    chunk the audio left short is completed with silence (counted as gap-filled; not GAP,
//    since it holds audio) once no more audio can come for it, so it stays whole and in time.
// The idle margin is adaptive: the largest lateness seen in this stream (arrival minus the
// first frame's time) plus kMarginSlackNs, never below the backend's floor. It only grows
// within a stream, so that the latency reported downstream only grows; lateness beyond
// kMaxMarginNs is a stall, not a pattern, and is not learnt, nor is the backlog behind it
// (packets that come sooner after the previous one than their audio could have). A packet that
// still arrives for time already filled is placed by the timeline's rules (never dropped) and
// counted.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "audio_format.h"
#include "capture_backend.h"
#include "frame_ring.h"
#include "logger.h"
#include "timeline.h"

namespace procaudio {

struct EngineSettings {
  AudioFormat format;
  uint32_t chunk_frames = 480;
  uint64_t capacity_frames = 9600;
  uint64_t alignment_threshold_ns = 40'000'000;
  uint64_t idle_margin_ns = 20'000'000;  // the floor of the adaptive idle margin
  uint64_t packet_period_ns = 0;         // the backend's latency_ns()

  bool operator==(const EngineSettings &o) const {
    return format == o.format && chunk_frames == o.chunk_frames &&
           capacity_frames == o.capacity_frames &&
           alignment_threshold_ns == o.alignment_threshold_ns &&
           idle_margin_ns == o.idle_margin_ns && packet_period_ns == o.packet_period_ns;
  }
  bool operator!=(const EngineSettings &o) const { return !(*this == o); }
};

// Every counter, once, with its name in the element's "stats" structure. EngineStats, the
// engine's atomics, reset_stats(), stats() and the element's structure are all made from it.
//   latency-last/-max: arrival of a chunk's last packet -> its push.
//   arrival-last: when the last pushed chunk's last packet arrived (the monotonic clock's ns):
//     with no queue downstream, a consumer's own time minus this is its chunk's
//     arrival->consumer time.
//   lateness-max, buffers-late: clause 7, as delivered: how long after its end time (PTS +
//     DURATION) a chunk was pushed, at worst, and how many were pushed later than
//     latency-time + live_latency_ns().
#define PROCAUDIO_ENGINE_STATS(X)                                                         \
  X(packets, "packets")                                                                   \
  X(frames_captured, "frames-captured")     /* the OS delivered, silent ones included */  \
  X(frames_silent, "frames-silent")         /* of which the OS flagged silent */          \
  X(frames_gap_filled, "frames-gap-filled") /* silence the element made (gaps, idle) */   \
  X(frames_dropped, "frames-dropped")       /* overwritten before the reader took them */ \
  X(frames_pushed, "frames-pushed")                                                       \
  X(discontinuities, "discontinuities") /* chunks handed out with DISCONT */              \
  X(resyncs, "resyncs")                 /* re-anchors: device step, drift, overflow */    \
  X(reattachments, "reattachments")     /* the target followed to a new process */        \
  X(chunks_pushed, "chunks-pushed")                                                       \
  X(latency_last_ns, "latency-last")                                                      \
  X(latency_max_ns, "latency-max")                                                        \
  X(arrival_last_ns, "arrival-last")                                                      \
  X(packets_late, "packets-late") /* came for time already filled with silence */         \
  X(lateness_max_ns, "lateness-max")                                                      \
  X(chunks_late, "buffers-late")

struct EngineStats {
#define PROCAUDIO_STAT_FIELD(field, name) uint64_t field = 0;
  PROCAUDIO_ENGINE_STATS(PROCAUDIO_STAT_FIELD)
#undef PROCAUDIO_STAT_FIELD
};

struct Chunk {
  uint64_t offset = 0;
  uint32_t frames = 0;
  bool discont = false;
  bool gap = false;
  uint64_t anchor_offset = 0;
  uint64_t anchor_time_ns = 0;
  uint64_t ready_time_ns = 0;
  uint64_t dropped_frames = 0;  // lost to overflow right before this chunk
};

class CaptureEngine final : public CaptureSink {
 public:
  explicit CaptureEngine(Logger logger = {});
  ~CaptureEngine() override;

  // ---- Control (no capture running) ----
  // Sizes the ring and the timeline; a fresh stream starts at the next begin().
  void configure(const EngineSettings &settings);
  const EngineSettings &settings() const { return settings_; }
  // A fresh stream: empty ring, new timeline (first chunk DISCONT), end and error cleared.
  // `start_ns`: when capture starts, where idle fill begins if no packet comes.
  void begin(uint64_t start_ns);
  void reset_stats();

  // The lateness learnt beyond this is a stall, and the slack added to what was learnt.
  static constexpr uint64_t kMaxMarginNs = 100'000'000;
  static constexpr uint64_t kMarginSlackNs = 5'000'000;
  // What a tick may come after its deadline (timer and scheduling).
  static constexpr uint64_t kTickSlackNs = 5'000'000;
  // The idle margin now: how late a packet may arrive after its first frame's time before
  // its time is filled with silence. Any thread.
  uint64_t idle_margin_ns() const { return margin_ns_.load(std::memory_order_relaxed); }
  // How long after its end time any chunk, idle fill included, is readable at the latest:
  // the packet period or the idle margin plus a tick's slack, whichever is longer. The
  // element's min latency is latency-time plus this. Any thread; only grows in a stream.
  uint64_t live_latency_ns() const;

  // ---- CaptureSink: the backend's capture thread ----
  void on_packet(const Packet &packet) override;
  void on_idle(uint64_t now_ns) override;
  void on_target_exit() override;
  void on_error(const CaptureError &error) override;
  void on_target_state(const TargetState &state) override;
  uint64_t idle_deadline_ns() const override;

  // ---- Streaming thread ----
  enum class ReadStatus { kChunk, kFlushing, kEnded, kFailed };
  // Waits for the next chunk (at most chunk_frames frames) of stream `stream` (a stream_id())
  // and copies its samples into `dst` (room for chunk_frames frames; zeros for a gap). After
  // the end or an error, what was captured is still handed out first. Returns kFlushing while
  // flushing or once `stream` is no longer the current stream.
  ReadStatus read(Chunk &chunk, void *dst, uint64_t stream);
  // True when read() would hand out a chunk at once: for a consumer that must not block
  // because the same thread also produces (the fuzzer drives both sides from one thread).
  bool chunk_ready() const;
  // The current stream; begin() and interrupt() start a new one.
  uint64_t stream_id() const { return stream_.load(); }
  // Records that a chunk read went downstream at `push_time_ns`.
  void note_pushed(const Chunk &chunk, uint64_t push_time_ns);
  // A target state and the stream offset (in frames) from which it holds: the frames written
  // before it was reported belong to the state before.
  struct OffsetState {
    uint64_t offset = 0;
    TargetState state;
  };
  // The target states, oldest first, that hold from before `before_offset`: those a chunk
  // ending there has reached, so that a state is posted with the audio it describes and never
  // ahead of it (UINT64_MAX: all, at the end). At most kMaxTargetStates are kept: beyond that
  // the oldest are dropped, the latest kept.
  std::vector<OffsetState> take_target_states(uint64_t before_offset);
  static constexpr size_t kMaxTargetStates = 64;

  // ---- Any thread ----
  // Wakes a waiting read() with kFlushing until set_flushing(false).
  void set_flushing(bool flushing);
  bool flushing() const { return flushing_.load(); }
  // Ends the current stream for the reader: a read() of it returns kFlushing, now or later.
  void interrupt();
  CaptureError error() const;
  EngineStats stats() const;

 private:
  void write_frames(const void *data, uint32_t frames, uint64_t ready_time_ns);
  void write_gap(uint64_t offset, uint64_t frames, uint64_t anchor_offset, uint64_t anchor_time_ns,
                 uint64_t ready_time_ns);
  void commit_open(uint64_t ready_time_ns);
  void wake_consumer();
  void finish(bool failed);
  bool take_pending_gap(Chunk &chunk, void *dst);
  static Chunk chunk_of(const ChunkHeader &header, uint64_t frames, uint64_t dropped);
  void learn_lateness(const Packet &packet);
  uint64_t fill_delay_ns() const;

  Logger log_;
  EngineSettings settings_;
  std::unique_ptr<FrameRing> ring_;
  std::unique_ptr<Timeline> timeline_;

  // Producer state.
  uint64_t start_ns_ = 0;
  bool discont_pending_ = false;
  bool committed_unwoken_ = false;  // a slot was committed since the reader was last woken
  uint64_t last_arrival_ns_ = 0;
  uint64_t chunk_ns_ = 0;               // the duration of chunk_frames
  std::atomic<uint64_t> margin_ns_{0};  // written by the producer only
  uint64_t previous_device_ns_ = 0;     // the last packet's, to tell a backlog
  uint64_t previous_arrival_ns_ = 0;

  // Consumer state: what is left of a gap slot handed out in chunk-sized pieces.
  ChunkHeader pending_gap_;

  // Shared, wait/wake.
  mutable std::mutex mutex_;
  std::condition_variable cond_;
  std::atomic<bool> consumer_waiting_{false};
  std::atomic<bool> flushing_{false};
  std::atomic<uint64_t> stream_{0};
  // The stream ended (the target exited) or failed; what was captured is still read first.
  enum class End { kNone, kEnded, kFailed };
  std::atomic<End> end_{End::kNone};
  CaptureError error_;                      // guarded by mutex_
  std::vector<OffsetState> target_states_;  // guarded by mutex_
  bool detached_ = false;  // producer: the target was waited for or exited since begin()

  struct Counters {
#define PROCAUDIO_STAT_COUNTER(field, name) std::atomic<uint64_t> field{0};
    PROCAUDIO_ENGINE_STATS(PROCAUDIO_STAT_COUNTER)
#undef PROCAUDIO_STAT_COUNTER
  } counters_;
};

}  // namespace procaudio
