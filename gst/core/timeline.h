// SPDX-License-Identifier: LGPL-2.1-or-later
// Timeline: turns the device time of each packet into a continuous sample stream.
//
// Stream offsets count every frame the element emits (captured or filled). Times come from an
// anchor (offset A was captured at device time T): frame n is at T + (n - A) / rate, so times
// derived from offsets never drift by rounding. Each packet is placed against that prediction:
//   within a quarter of the threshold   accepted as is (jitter);
//   later, after a jump between packets  a gap (a lost graph cycle, a stall): filled with
//                                        silence, so recordings keep time and PTS never
//                                        lags what was captured;
//   otherwise within the threshold       accepted as is (jitter, slow drift);
//   later, right after filled silence    the fill is topped up exactly (it is all silence);
//   flagged discontinuous by the device  any lost time is filled, then a new anchor (resync);
//   the first after reattach()           another process now: lost time filled, a new anchor
//                                        that never steps back behind the stream;
//   otherwise beyond the threshold       drift or a step back: a new anchor (resync).
// Real audio is never dropped or moved. While nothing arrives, idle_fill() extends the stream
// with silence up to a given time.
#pragma once

#include <cstdint>

namespace procaudio {

// a * b / c without overflow for b, c < 2^32 and results < 2^64.
uint64_t scale_u64(uint64_t a, uint64_t b, uint64_t c);

class Timeline {
 public:
  enum class Resync { kNone, kStart, kDeviceDiscontinuity, kDrift, kReattach };

  struct Placement {
    // Silence to insert before the packet, stamped with the anchor in force before it.
    uint64_t fill_frames = 0;
    uint64_t fill_offset = 0;
    uint64_t fill_anchor_offset = 0;
    uint64_t fill_anchor_time_ns = 0;
    // A new anchor starts at the packet's first frame.
    Resync resync = Resync::kNone;
    // The packet came for time the stream had already filled with idle silence: it is
    // placed after that silence (later than it was captured, or re-anchored), not dropped.
    bool into_fill = false;
  };

  struct IdleFill {
    uint64_t frames = 0;
    uint64_t offset = 0;
    bool started = false;  // the stream began with this fill (no packet had come)
  };

  Timeline(uint32_t rate, uint64_t alignment_threshold_ns);

  void reset();
  // The next packet comes from another process (the target was followed to a new one): it
  // starts a new anchor at its own time, or at the stream's end if that is later (a fill of
  // the wait may reach past a packet's time: PTS never steps back).
  void reattach() { reattach_pending_ = true; }
  bool started() const { return started_; }

  // Places a packet of `frames` whose first frame was captured at `device_time_ns`
  // (`flags` are PacketFlags) and advances the stream past any fill and the packet.
  Placement place(uint64_t device_time_ns, uint32_t frames, uint32_t flags);

  // Silence, in whole multiples of `granularity` frames, that brings the stream up to
  // `until_ns`. Starts the stream at `start_ns` if no packet came yet.
  IdleFill idle_fill(uint64_t until_ns, uint32_t granularity, uint64_t start_ns);

  // Extends the stream by `frames` of made silence (the rest of a chunk the audio left
  // short), as idle_fill() would.
  void pad(uint64_t frames);

  uint64_t next_offset() const { return next_offset_; }
  uint64_t anchor_offset() const { return anchor_offset_; }
  uint64_t anchor_time_ns() const { return anchor_time_ns_; }
  // Device time of stream offset `offset` (>= the anchor's offset).
  uint64_t time_at(uint64_t offset) const;

 private:
  uint64_t frames_to_ns(uint64_t frames) const;
  uint64_t ns_to_frames_rounded(uint64_t ns) const;
  void set_anchor(uint64_t offset, uint64_t time_ns);

  const uint32_t rate_;
  const uint64_t threshold_ns_;
  const uint64_t gap_tolerance_ns_;  // a jump and a lateness beyond this are a gap
  bool started_ = false;
  uint64_t next_offset_ = 0;
  uint64_t anchor_offset_ = 0;
  uint64_t anchor_time_ns_ = 0;
  // End of the previous packet by its own stamp: tells a sudden gap from slow drift.
  uint64_t previous_end_ns_ = 0;
  bool previous_was_fill_ = false;
  bool reattach_pending_ = false;
};

}  // namespace procaudio
