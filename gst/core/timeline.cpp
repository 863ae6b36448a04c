// SPDX-License-Identifier: LGPL-2.1-or-later
#include "timeline.h"

#include <algorithm>

#include "packet.h"

namespace procaudio {

namespace {
constexpr uint64_t kNsPerSecond = 1'000'000'000;
}

uint64_t scale_u64(uint64_t a, uint64_t b, uint64_t c) {
  const uint64_t whole = a / c;
  const uint64_t rest = a % c;
  return whole * b + rest * b / c;
}

Timeline::Timeline(uint32_t rate, uint64_t alignment_threshold_ns)
    : rate_(rate), threshold_ns_(alignment_threshold_ns), gap_tolerance_ns_(threshold_ns_ / 4) {}

void Timeline::reset() {
  started_ = false;
  next_offset_ = 0;
  anchor_offset_ = 0;
  anchor_time_ns_ = 0;
  previous_end_ns_ = 0;
  previous_was_fill_ = false;
  reattach_pending_ = false;
}

uint64_t Timeline::frames_to_ns(uint64_t frames) const {
  return scale_u64(frames, kNsPerSecond, rate_);
}

uint64_t Timeline::ns_to_frames_rounded(uint64_t ns) const {
  return scale_u64(ns, rate_, kNsPerSecond) +
         (scale_u64(ns, rate_, kNsPerSecond / 2) % 2);  // round half up
}

uint64_t Timeline::time_at(uint64_t offset) const {
  return anchor_time_ns_ + frames_to_ns(offset - anchor_offset_);
}

void Timeline::set_anchor(uint64_t offset, uint64_t time_ns) {
  anchor_offset_ = offset;
  anchor_time_ns_ = time_ns;
}

Timeline::Placement Timeline::place(uint64_t device_time_ns, uint32_t frames, uint32_t flags) {
  Placement placement;
  placement.fill_offset = next_offset_;
  placement.fill_anchor_offset = anchor_offset_;
  placement.fill_anchor_time_ns = anchor_time_ns_;

  if (!started_) {
    started_ = true;
    reattach_pending_ = false;
    set_anchor(next_offset_, device_time_ns);
    placement.resync = Resync::kStart;
  } else if (reattach_pending_) {
    reattach_pending_ = false;
    const uint64_t expected = time_at(next_offset_);
    if (device_time_ns > expected) {
      placement.fill_frames = ns_to_frames_rounded(device_time_ns - expected);
    }
    placement.into_fill = previous_was_fill_ && device_time_ns < expected &&
                          expected - device_time_ns >= frames_to_ns(1);
    next_offset_ += placement.fill_frames;
    set_anchor(next_offset_, std::max(device_time_ns, time_at(next_offset_)));
    placement.resync = Resync::kReattach;
  } else {
    const uint64_t expected = time_at(next_offset_);
    if ((flags & kPacketTimestampError) != 0) {
      device_time_ns = expected;  // trust the stream's own count over a bad stamp
    }
    const bool late = device_time_ns > expected;
    const uint64_t distance = late ? device_time_ns - expected : expected - device_time_ns;
    // A jump: this packet starts well after the previous one ended, by its own stamps (slow
    // drift never jumps). With the stream behind by as much, time was lost, not skewed.
    const bool jumped =
        device_time_ns > previous_end_ns_ && device_time_ns - previous_end_ns_ > gap_tolerance_ns_;
    placement.into_fill = previous_was_fill_ && !late && distance >= frames_to_ns(1);

    if ((flags & kPacketDiscontinuity) != 0) {
      if (late) {
        placement.fill_frames = ns_to_frames_rounded(distance);
      }
      placement.resync = Resync::kDeviceDiscontinuity;
    } else if (late && distance > gap_tolerance_ns_ && jumped) {
      placement.fill_frames = ns_to_frames_rounded(distance);
    } else if (late && previous_was_fill_) {
      placement.fill_frames = ns_to_frames_rounded(distance);
    } else if (distance > threshold_ns_) {
      placement.resync = Resync::kDrift;
    }
    next_offset_ += placement.fill_frames;
    if (placement.resync != Resync::kNone) {
      set_anchor(next_offset_, device_time_ns);
    }
  }

  next_offset_ += frames;
  previous_end_ns_ = device_time_ns + frames_to_ns(frames);
  previous_was_fill_ = false;
  return placement;
}

void Timeline::pad(uint64_t frames) {
  if (frames == 0) {
    return;
  }
  next_offset_ += frames;
  previous_end_ns_ = time_at(next_offset_);
  previous_was_fill_ = true;
}

Timeline::IdleFill Timeline::idle_fill(uint64_t until_ns, uint32_t granularity, uint64_t start_ns) {
  IdleFill fill;
  if (!started_) {
    started_ = true;
    fill.started = true;
    set_anchor(next_offset_, start_ns);
    previous_end_ns_ = start_ns;
  }
  fill.offset = next_offset_;
  const uint64_t expected = time_at(next_offset_);
  if (until_ns <= expected || granularity == 0) {
    return fill;
  }
  const uint64_t frames = scale_u64(until_ns - expected, rate_, kNsPerSecond);
  fill.frames = frames - frames % granularity;
  if (fill.frames > 0) {
    next_offset_ += fill.frames;
    previous_end_ns_ = time_at(next_offset_);
    previous_was_fill_ = true;
  }
  return fill;
}

}  // namespace procaudio
