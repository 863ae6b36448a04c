// CaptureEngine: what a backend's capture thread feeds (CaptureSink) and what the streaming
// thread reads chunks from. Producer side: Timeline -> FrameRing, never blocks, never
// allocates. Consumer side: blocks on a condition until a chunk, a flush, the end or an error.
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
  uint64_t idle_margin_ns = 20'000'000;

  bool operator==(const EngineSettings &o) const {
    return format == o.format && chunk_frames == o.chunk_frames &&
           capacity_frames == o.capacity_frames &&
           alignment_threshold_ns == o.alignment_threshold_ns && idle_margin_ns == o.idle_margin_ns;
  }
  bool operator!=(const EngineSettings &o) const { return !(*this == o); }
};

struct EngineStats {
  uint64_t packets = 0;
  uint64_t frames_captured = 0;    // frames the OS delivered, silent ones included
  uint64_t frames_silent = 0;      // of which the OS flagged silent
  uint64_t frames_gap_filled = 0;  // silence the element made (gaps, idle target)
  uint64_t frames_dropped = 0;     // overwritten before the streaming thread took them
  uint64_t frames_pushed = 0;
  uint64_t discontinuities = 0;  // chunks handed out with DISCONT
  uint64_t resyncs = 0;          // re-anchors: device discontinuity, drift, overflow
  uint64_t reattachments = 0;    // the target followed to a new process
  uint64_t chunks_pushed = 0;
  uint64_t latency_last_ns = 0;  // arrival of a chunk's last packet -> its push
  uint64_t latency_max_ns = 0;
  // When the last pushed chunk's last packet arrived (the monotonic clock's ns): with no
  // queue downstream, a consumer's own time minus this is its chunk's arrival->consumer time.
  uint64_t arrival_last_ns = 0;
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

  // ---- CaptureSink: the backend's capture thread ----
  void on_packet(const Packet &packet) override;
  void on_idle(uint64_t now_ns) override;
  void on_target_exit() override;
  void on_error(const CaptureError &error) override;
  void on_target_state(const TargetState &state) override;

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

  Logger log_;
  EngineSettings settings_;
  std::unique_ptr<FrameRing> ring_;
  std::unique_ptr<Timeline> timeline_;

  // Producer state.
  uint64_t start_ns_ = 0;
  bool discont_pending_ = false;
  bool committed_unwoken_ = false;  // a slot was committed since the reader was last woken
  uint64_t last_arrival_ns_ = 0;

  // Consumer state: a gap slot longer than a chunk is handed out in chunk-sized pieces.
  ChunkHeader pending_gap_;
  uint64_t pending_gap_done_ = 0;
  bool pending_gap_discont_ = false;
  uint64_t pending_gap_dropped_ = 0;

  // Shared, wait/wake.
  mutable std::mutex mutex_;
  std::condition_variable cond_;
  std::atomic<bool> consumer_waiting_{false};
  std::atomic<bool> flushing_{false};
  std::atomic<uint64_t> stream_{0};
  std::atomic<bool> ended_{false};
  std::atomic<bool> failed_{false};
  CaptureError error_;                      // guarded by mutex_
  std::vector<OffsetState> target_states_;  // guarded by mutex_
  bool detached_ = false;  // producer: the target was waited for or exited since begin()

  struct Counters {
    std::atomic<uint64_t> packets{0}, frames_captured{0}, frames_silent{0}, frames_gap_filled{0},
        frames_dropped{0}, frames_pushed{0}, discontinuities{0}, resyncs{0}, reattachments{0},
        chunks_pushed{0}, latency_last_ns{0}, latency_max_ns{0}, arrival_last_ns{0};
  } counters_;
};

}  // namespace procaudio
