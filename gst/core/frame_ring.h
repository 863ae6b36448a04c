// SPDX-License-Identifier: LGPL-2.1-or-later
// FrameRing: the hand-off between the capture thread (one producer) and the streaming
// thread (one consumer). Lock-free, allocation-free after construction.
//
// The ring holds slots of up to one chunk of frames each, plus the timing the consumer needs
// to stamp them. The producer fills a slot across packets of any size and commits it; it never
// waits for the consumer: when the consumer is behind, the producer overwrites the oldest slot.
// The consumer notices (each slot carries a sequence number, checked before and after its
// copy, seqlock-style) and skips to the oldest intact slot; stream offsets are continuous, so
// the skipped frames are counted exactly from the offsets.
//
// A gap slot stands for element-made silence: it carries a frame count and no samples, so a
// long gap costs one slot and no copying.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace procaudio {

enum ChunkFlags : uint32_t {
  kChunkNone = 0,
  kChunkDiscont = 1u << 0,  // continuity was lost just before this slot's first frame
  kChunkGap = 1u << 1,      // element-made silence; the slot has no samples
};

struct ChunkHeader {
  uint64_t offset = 0;  // stream offset of the first frame
  uint64_t frames = 0;
  uint32_t flags = kChunkNone;
  // Timing anchor: stream offset `anchor_offset` was captured at device time `anchor_time_ns`.
  uint64_t anchor_offset = 0;
  uint64_t anchor_time_ns = 0;
  // Arrival time of the packet that completed the slot (monotonic ns).
  uint64_t ready_time_ns = 0;
};

class FrameRing {
 public:
  // Holds at least `capacity_frames` committed frames in slots of `chunk_frames`.
  FrameRing(uint32_t bytes_per_frame, uint32_t chunk_frames, uint64_t capacity_frames);
  ~FrameRing();
  FrameRing(const FrameRing &) = delete;
  FrameRing &operator=(const FrameRing &) = delete;

  uint32_t bytes_per_frame() const { return bytes_per_frame_; }
  uint32_t slot_count() const { return slot_count_; }
  // Frames of samples the ring holds before the producer overwrites unread ones.
  uint64_t capacity_frames() const { return uint64_t{slot_count_ - 1} * chunk_frames_; }

  // Both threads stopped: forget everything.
  void reset();

  // ---- Producer (one thread) ----
  // Opens the next slot; from here on its previous contents are gone. `header.frames` is
  // ignored for a data slot (it grows with append) and taken as is for a gap slot.
  void open_slot(const ChunkHeader &header);
  bool slot_is_open() const { return open_; }
  // Room left in the open data slot, in frames.
  uint32_t slot_room() const;
  // Appends up to slot_room() frames to the open data slot; null `data` appends silence.
  void append(const void *data, uint32_t frames);
  // Publishes the open slot to the consumer.
  void commit(uint64_t ready_time_ns);

  // ---- Consumer (one thread) ----
  enum class ReadResult { kOk, kEmpty };
  // Copies the oldest intact committed slot: its header and, for a data slot, its samples
  // into `dst` (room for a whole slot, `chunk_frames` frames). `skipped_frames` gets the frames
  // overwritten before they could be read since the previous read (0 almost always).
  ReadResult read(ChunkHeader &header, void *dst, uint64_t &skipped_frames);
  // True when a committed slot is waiting; safe from the consumer only.
  bool readable() const;

 private:
  struct Slot;

  Slot &slot(uint64_t index) const;

  const uint32_t bytes_per_frame_;
  const uint32_t chunk_frames_;
  const uint32_t slot_count_;
  const uint32_t slot_words_;
  std::unique_ptr<Slot[]> slots_;
  std::unique_ptr<std::atomic<uint64_t>[]> words_;

  // Producer state.
  std::atomic<uint64_t> write_index_{0};  // slots committed so far
  bool open_ = false;
  ChunkHeader open_header_;
  uint64_t open_bytes_ = 0;

  // Consumer state.
  uint64_t read_index_ = 0;
  uint64_t expected_offset_ = 0;
};

}  // namespace procaudio
