// SPDX-License-Identifier: LGPL-2.1-or-later
#include <gtest/gtest.h>

#include "core/packet.h"
#include "core/timeline.h"

using procaudio::kPacketDiscontinuity;
using procaudio::kPacketNone;
using procaudio::kPacketTimestampError;
using procaudio::scale_u64;
using procaudio::Timeline;
using Resync = Timeline::Resync;

namespace {
constexpr uint32_t kRate = 48000;
constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kThreshold = 40 * kMs;
constexpr uint64_t kT0 = 5'000'000'000;  // an arbitrary monotonic start
uint64_t ns(uint64_t frames) {
  return scale_u64(frames, 1'000'000'000, kRate);
}
}  // namespace

TEST(Timeline, ScaleDoesNotOverflow) {
  EXPECT_EQ(scale_u64(uint64_t{1} << 62, 48000, 48000), uint64_t{1} << 62);
  EXPECT_EQ(scale_u64(10'000'000'000'000ull, 48000, 1'000'000'000), 480'000'000ull);
}

TEST(Timeline, FirstPacketAnchorsTheStream) {
  Timeline tl(kRate, kThreshold);
  const auto p = tl.place(kT0, 441, kPacketNone);
  EXPECT_EQ(p.resync, Resync::kStart);
  EXPECT_EQ(p.fill_frames, 0u);
  EXPECT_EQ(tl.anchor_offset(), 0u);
  EXPECT_EQ(tl.anchor_time_ns(), kT0);
  EXPECT_EQ(tl.next_offset(), 441u);
}

TEST(Timeline, JitterWithinTheThresholdIsAcceptedWithoutMovingAnything) {
  Timeline tl(kRate, kThreshold);
  tl.place(kT0, 480, kPacketNone);
  uint64_t offset = 480;
  for (int i = 0; i < 1000; ++i) {
    const int64_t jitter = (i % 7 - 3) * 3 * static_cast<int64_t>(kMs);  // +-9 ms
    const auto p = tl.place(kT0 + ns(offset) + jitter, 480, kPacketNone);
    ASSERT_EQ(p.resync, Resync::kNone);
    ASSERT_EQ(p.fill_frames, 0u);
    offset += 480;
  }
  EXPECT_EQ(tl.anchor_time_ns(), kT0);
  EXPECT_EQ(tl.time_at(offset), kT0 + ns(offset));
}

TEST(Timeline, AGapBeyondTheThresholdIsFilledExactlySoTheStreamKeepsTime) {
  Timeline tl(kRate, kThreshold);
  tl.place(kT0, 480, kPacketNone);
  // The next packet comes 250 ms late: 250 ms of silence go before it.
  const uint64_t t = kT0 + ns(480) + 250 * kMs;
  const auto p = tl.place(t, 480, kPacketNone);
  EXPECT_EQ(p.resync, Resync::kNone);
  EXPECT_EQ(p.fill_frames, 12000u);
  EXPECT_EQ(p.fill_offset, 480u);
  EXPECT_EQ(tl.time_at(480 + 12000), t);
  EXPECT_EQ(tl.next_offset(), 480u + 12000u + 480u);
}

TEST(Timeline, SlowDriftPastTheThresholdResyncsWithoutInsertingSilence) {
  Timeline tl(kRate, kThreshold);
  tl.place(kT0, 480, kPacketNone);
  // The device runs 1% slow: each 10 ms chunk arrives 0.1 ms later than the sample count says.
  uint64_t t = kT0;
  Resync seen = Resync::kNone;
  int packets = 0;
  while (seen == Resync::kNone && packets < 10000) {
    t += ns(480) + ns(480) / 100;
    const auto p = tl.place(t, 480, kPacketNone);
    EXPECT_EQ(p.fill_frames, 0u) << "drift must not be mistaken for a gap";
    seen = p.resync;
    ++packets;
  }
  EXPECT_EQ(seen, Resync::kDrift);
  EXPECT_NEAR(packets, 400, 2);  // 40 ms of drift at 0.1 ms per packet
  EXPECT_EQ(tl.anchor_time_ns(), t);
}

TEST(Timeline, AStepBackResyncs) {
  Timeline tl(kRate, kThreshold);
  tl.place(kT0, 4800, kPacketNone);
  const auto p = tl.place(kT0 + ns(4800) - 60 * kMs, 480, kPacketNone);
  EXPECT_EQ(p.resync, Resync::kDrift);
  EXPECT_EQ(p.fill_frames, 0u);
  EXPECT_EQ(tl.anchor_offset(), 4800u);
}

TEST(Timeline, DeviceDiscontinuityFillsLostTimeThenReanchors) {
  Timeline tl(kRate, kThreshold);
  tl.place(kT0, 480, kPacketNone);
  const uint64_t t = kT0 + ns(480) + 5 * kMs;  // 5 ms lost, under the threshold
  const auto p = tl.place(t, 480, kPacketDiscontinuity);
  EXPECT_EQ(p.resync, Resync::kDeviceDiscontinuity);
  EXPECT_EQ(p.fill_frames, 240u);
  EXPECT_EQ(p.fill_anchor_time_ns, kT0);  // the fill belongs to the old anchor
  EXPECT_EQ(tl.anchor_offset(), 720u);
  EXPECT_EQ(tl.anchor_time_ns(), t);
}

TEST(Timeline, TimestampErrorTrustsTheSampleCount) {
  Timeline tl(kRate, kThreshold);
  tl.place(kT0, 480, kPacketNone);
  const auto p = tl.place(kT0 + 900 * kMs, 480, kPacketTimestampError);
  EXPECT_EQ(p.resync, Resync::kNone);
  EXPECT_EQ(p.fill_frames, 0u);
}

TEST(Timeline, IdleFillStartsTheStreamAndFillsWholeChunksOnly) {
  Timeline tl(kRate, kThreshold);
  auto f = tl.idle_fill(kT0 + 25 * kMs, 480, kT0);
  EXPECT_TRUE(f.started);
  EXPECT_EQ(f.frames, 960u);  // 25 ms = 1200 frames, rounded down to whole chunks
  EXPECT_EQ(tl.anchor_time_ns(), kT0);
  f = tl.idle_fill(kT0 + 25 * kMs, 480, kT0);
  EXPECT_FALSE(f.started);
  EXPECT_EQ(f.frames, 0u);
  f = tl.idle_fill(kT0 + 31 * kMs, 480, kT0);
  EXPECT_EQ(f.frames, 480u);
  EXPECT_EQ(f.offset, 960u);
}

TEST(Timeline, AudioAfterIdleFillIsAlignedExactlyByToppingUpTheSilence) {
  Timeline tl(kRate, kThreshold);
  tl.idle_fill(kT0 + 100 * kMs, 480, kT0);  // 4800 frames of silence
  const uint64_t t = kT0 + 117 * kMs;       // audio starts 17 ms after the fill ends
  const auto p = tl.place(t, 480, kPacketNone);
  EXPECT_EQ(p.resync, Resync::kNone);
  EXPECT_EQ(p.fill_frames, 816u);
  EXPECT_EQ(tl.time_at(p.fill_offset + p.fill_frames), t);
}

TEST(Timeline, AudioThatOverlapsIdleFillResyncsAndIsKept) {
  Timeline tl(kRate, kThreshold);
  tl.idle_fill(kT0 + 100 * kMs, 480, kT0);
  const auto p = tl.place(kT0 + 50 * kMs, 480, kPacketNone);  // 50 ms "in the past"
  EXPECT_EQ(p.resync, Resync::kDrift);
  EXPECT_EQ(tl.next_offset(), 4800u + 480u);  // nothing dropped
}

TEST(Timeline, ALostGraphCycleIsFilledNotAbsorbed) {
  // PipeWire skipped a cycle: the next quantum's time is one quantum past the stream's end.
  // Absorbed as jitter, PTS would lag the audio by 21 ms for good (and a second loss would
  // resync); filled, the stream keeps time.
  Timeline tl(kRate, kThreshold);
  tl.place(kT0, 1024, kPacketNone);
  const uint64_t t = kT0 + ns(2048);
  const auto p = tl.place(t, 1024, kPacketNone);
  EXPECT_EQ(p.resync, Resync::kNone);
  EXPECT_EQ(p.fill_frames, 1024u);
  EXPECT_EQ(tl.time_at(1024 + 1024), t);
  EXPECT_FALSE(p.into_fill);
}

TEST(Timeline, AudioThatOverlapsIdleFillIsMarked) {
  Timeline tl(kRate, kThreshold);
  tl.idle_fill(kT0 + 100 * kMs, 480, kT0);
  EXPECT_TRUE(tl.place(kT0 + 90 * kMs, 480, kPacketNone).into_fill);
  EXPECT_FALSE(tl.place(kT0 + 100 * kMs + ns(480), 480, kPacketNone).into_fill);
}
