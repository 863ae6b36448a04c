// SPDX-License-Identifier: LGPL-2.1-or-later
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "core/frame_ring.h"

using procaudio::ChunkHeader;
using procaudio::FrameRing;
using procaudio::kChunkDiscont;
using procaudio::kChunkGap;

namespace {

// Mono S32-sized frames carrying their own stream offset, so every copy can be checked.
constexpr uint32_t kBytesPerFrame = 4;

std::vector<uint32_t> numbered(uint64_t first, uint32_t frames) {
  std::vector<uint32_t> v(frames);
  for (uint32_t i = 0; i < frames; ++i) {
    v[i] = static_cast<uint32_t>(first + i);
  }
  return v;
}

// Producer helper: writes `frames` numbered frames starting at `offset` into chunk slots.
void produce(FrameRing &ring, uint64_t &offset, uint32_t frames, uint64_t ready = 0) {
  const auto data = numbered(offset, frames);
  uint32_t done = 0;
  while (done < frames) {
    if (!ring.slot_is_open()) {
      ChunkHeader h;
      h.offset = offset;
      ring.open_slot(h);
    }
    const uint32_t n = std::min(frames - done, ring.slot_room());
    ring.append(data.data() + done, n);
    done += n;
    offset += n;
    if (ring.slot_room() == 0) {
      ring.commit(ready);
    }
  }
}

}  // namespace

TEST(FrameRing, CapacityHoldsBufferTimeInWholeChunks) {
  FrameRing ring(kBytesPerFrame, 480, 9600);
  EXPECT_EQ(ring.capacity_frames(), 9600u);
  EXPECT_EQ(ring.slot_count(), 21u);
  FrameRing odd(kBytesPerFrame, 441, 1000);
  EXPECT_GE(odd.capacity_frames(), 1000u);
}

TEST(FrameRing, PacketsThatDoNotDivideTheChunkComeOutAsWholeChunksInOrder) {
  FrameRing ring(kBytesPerFrame, 480, 4800);
  uint64_t offset = 0;
  for (uint32_t size : {441u, 1024u, 2048u, 7u, 480u}) {
    produce(ring, offset, size);
  }
  std::vector<uint32_t> out(480);
  uint64_t expected = 0;
  ChunkHeader h;
  uint64_t skipped = 99;
  while (ring.read(h, out.data(), skipped) == FrameRing::ReadResult::kOk) {
    EXPECT_EQ(skipped, 0u);
    EXPECT_EQ(h.offset, expected);
    EXPECT_EQ(h.frames, 480u);
    for (uint32_t i = 0; i < h.frames; ++i) {
      ASSERT_EQ(out[i], expected + i);
    }
    expected += h.frames;
  }
  // 4000 frames in: 8 whole chunks readable, 160 frames still in the open slot.
  EXPECT_EQ(expected, 3840u);
  EXPECT_TRUE(ring.slot_is_open());
  ring.commit(0);
  ASSERT_EQ(ring.read(h, out.data(), skipped), FrameRing::ReadResult::kOk);
  EXPECT_EQ(h.frames, 160u);
  EXPECT_EQ(out[159], 3999u);
}

TEST(FrameRing, StalledConsumerLosesTheOldestAndLearnsExactlyHowMany) {
  FrameRing ring(kBytesPerFrame, 100, 1000);  // 10 readable slots
  uint64_t offset = 0;
  produce(ring, offset, 2500);  // 25 chunks while nobody reads
  std::vector<uint32_t> out(100);
  ChunkHeader h;
  uint64_t skipped = 0;
  ASSERT_EQ(ring.read(h, out.data(), skipped), FrameRing::ReadResult::kOk);
  // The newest 10 whole chunks survive: 1500..2499.
  EXPECT_EQ(skipped, 1500u);
  EXPECT_EQ(h.offset, 1500u);
  EXPECT_EQ(out[0], 1500u);
  uint64_t read = h.frames;
  while (ring.read(h, out.data(), skipped) == FrameRing::ReadResult::kOk) {
    EXPECT_EQ(skipped, 0u);
    EXPECT_EQ(out[0], h.offset);
    read += h.frames;
  }
  EXPECT_EQ(read + 1500u, 2500u);
}

TEST(FrameRing, GapSlotsCarryACountAndNoSamples) {
  FrameRing ring(kBytesPerFrame, 100, 1000);
  ChunkHeader gap;
  gap.offset = 0;
  gap.frames = 1'000'000;  // far more than the ring holds: costs one slot
  gap.flags = kChunkGap | kChunkDiscont;
  ring.open_slot(gap);
  ring.commit(7);
  uint64_t offset = 1'000'000;
  produce(ring, offset, 100);
  std::vector<uint32_t> out(100, 0xdeadbeef);
  ChunkHeader h;
  uint64_t skipped = 0;
  ASSERT_EQ(ring.read(h, out.data(), skipped), FrameRing::ReadResult::kOk);
  EXPECT_EQ(h.frames, 1'000'000u);
  EXPECT_EQ(h.flags, kChunkGap | kChunkDiscont);
  EXPECT_EQ(h.ready_time_ns, 7u);
  EXPECT_EQ(out[0], 0xdeadbeefu);  // nothing copied for a gap
  ASSERT_EQ(ring.read(h, out.data(), skipped), FrameRing::ReadResult::kOk);
  EXPECT_EQ(skipped, 0u);
  EXPECT_EQ(h.offset, 1'000'000u);
}

TEST(FrameRing, OddFrameSizesSurviveTheWordStorage) {
  // S16 mono: 2-byte frames, so slot contents straddle the ring's 8-byte words.
  FrameRing ring(2, 441, 4410);
  std::vector<uint16_t> in(1000);
  for (size_t i = 0; i < in.size(); ++i) {
    in[i] = static_cast<uint16_t>(i * 7 + 3);
  }
  ChunkHeader h;
  ring.open_slot(h);
  ring.append(in.data(), 3);
  ring.append(in.data() + 3, 5);
  ring.append(in.data() + 8, 433);
  ring.commit(0);
  std::vector<uint16_t> out(441);
  uint64_t skipped = 0;
  ASSERT_EQ(ring.read(h, out.data(), skipped), FrameRing::ReadResult::kOk);
  ASSERT_EQ(h.frames, 441u);
  EXPECT_EQ(0, std::memcmp(out.data(), in.data(), 441 * 2));
}

TEST(FrameRing, ConcurrentProducerAndSlowConsumerAccountForEveryFrame) {
  FrameRing ring(kBytesPerFrame, 64, 256);
  constexpr uint64_t kTotal = 2'000'000;
  std::atomic<bool> done{false};
  std::thread producer([&] {
    uint64_t offset = 0;
    uint32_t size = 1;
    while (offset < kTotal) {
      const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(size, kTotal - offset));
      produce(ring, offset, n);
      size = size % 200 + 37;
    }
    ring.commit(0);
    done.store(true);
  });
  uint64_t read = 0, skipped_total = 0, expected = 0;
  std::vector<uint32_t> out(64);
  ChunkHeader h;
  for (;;) {
    uint64_t skipped = 0;
    const bool finished = done.load();
    if (ring.read(h, out.data(), skipped) == FrameRing::ReadResult::kOk) {
      skipped_total += skipped;
      ASSERT_EQ(h.offset, expected + skipped);
      for (uint32_t i = 0; i < h.frames; ++i) {
        ASSERT_EQ(out[i], static_cast<uint32_t>(h.offset + i)) << "torn copy accepted";
      }
      read += h.frames;
      expected = h.offset + h.frames;
    } else if (finished) {
      break;
    }
  }
  producer.join();
  EXPECT_EQ(read + skipped_total, kTotal);
}
