#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include "core/capture_engine.h"
#include "core/timeline.h"

using procaudio::CaptureEngine;
using procaudio::Chunk;
using procaudio::EngineSettings;
using procaudio::Packet;
using ReadStatus = CaptureEngine::ReadStatus;

namespace {

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kT0 = 10'000'000'000;

EngineSettings mono_f32(uint32_t chunk = 480, uint64_t capacity = 9600) {
  EngineSettings s;
  s.format.channels = 1;
  s.format.rate = 48000;
  s.chunk_frames = chunk;
  s.capacity_frames = capacity;
  s.idle_margin_ns = 20 * kMs;
  return s;
}

uint64_t frames_ns(uint64_t frames) {
  return procaudio::scale_u64(frames, 1'000'000'000, 48000);
}

// Feeds packets whose samples are their stream position, so the output can be checked.
struct Feeder {
  CaptureEngine &engine;
  uint64_t frames = 0;
  std::vector<float> buf;

  void packet(uint32_t n, uint32_t flags = 0, int64_t time_shift_ns = 0) {
    buf.resize(n);
    for (uint32_t i = 0; i < n; ++i) {
      buf[i] = static_cast<float>(frames + i);
    }
    Packet p;
    p.data = buf.data();
    p.frames = n;
    p.flags = flags;
    p.device_time_ns = kT0 + frames_ns(frames) + time_shift_ns;
    p.arrival_time_ns = p.device_time_ns + 2 * kMs;
    engine.on_packet(p);
    frames += n;
  }
};

}  // namespace

TEST(CaptureEngine, FirstChunkIsDiscontThenChunksAreWholeAndContinuous) {
  CaptureEngine engine;
  engine.configure(mono_f32());
  engine.begin(kT0);
  Feeder feed{engine};
  for (uint32_t n : {441u, 1024u, 2048u, 441u, 1024u}) {
    feed.packet(n);
  }
  std::vector<float> out(480);
  Chunk c;
  uint64_t offset = 0;
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(engine.read(c, out.data(), engine.stream_id()), ReadStatus::kChunk);
    EXPECT_EQ(c.discont, i == 0);
    EXPECT_FALSE(c.gap);
    EXPECT_EQ(c.offset, offset);
    EXPECT_EQ(c.frames, 480u);
    EXPECT_EQ(c.anchor_time_ns, kT0);
    EXPECT_EQ(out[0], static_cast<float>(offset));
    EXPECT_EQ(out[479], static_cast<float>(offset + 479));
    offset += 480;
  }
}

TEST(CaptureEngine, SilentPacketsAreDataNotGapAndAreZeroed) {
  CaptureEngine engine;
  engine.configure(mono_f32());
  engine.begin(kT0);
  Feeder feed{engine};
  feed.packet(480, procaudio::kPacketSilent);
  std::vector<float> out(480, 1.0f);
  Chunk c;
  ASSERT_EQ(engine.read(c, out.data(), engine.stream_id()), ReadStatus::kChunk);
  EXPECT_FALSE(c.gap);
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_EQ(out[479], 0.0f);
  EXPECT_EQ(engine.stats().frames_silent, 480u);
  EXPECT_EQ(engine.stats().frames_gap_filled, 0u);
}

TEST(CaptureEngine, GapsBecomeGapChunksOfAtMostOneChunkEach) {
  CaptureEngine engine;
  engine.configure(mono_f32());
  engine.begin(kT0);
  Feeder feed{engine};
  feed.packet(480);
  feed.frames += 4800 + 100;  // 102 ms with no packet
  feed.packet(480);
  std::vector<float> out(480, 7.0f);
  Chunk c;
  ASSERT_EQ(engine.read(c, out.data(), engine.stream_id()), ReadStatus::kChunk);
  EXPECT_FALSE(c.gap);
  uint64_t gap = 0;
  while (gap < 4900) {
    ASSERT_EQ(engine.read(c, out.data(), engine.stream_id()), ReadStatus::kChunk);
    ASSERT_TRUE(c.gap);
    EXPECT_FALSE(c.discont) << "a filled gap keeps the stream continuous";
    EXPECT_LE(c.frames, 480u);
    EXPECT_EQ(out[0], 0.0f);
    gap += c.frames;
  }
  EXPECT_EQ(gap, 4900u);
  ASSERT_EQ(engine.read(c, out.data(), engine.stream_id()), ReadStatus::kChunk);
  EXPECT_FALSE(c.gap);
  EXPECT_EQ(c.offset, 480u + 4900u);
  EXPECT_EQ(out[0], static_cast<float>(480 + 4900));
  EXPECT_EQ(engine.stats().frames_gap_filled, 4900u);
}

TEST(CaptureEngine, TargetExitDrainsEverythingThenEnds) {
  CaptureEngine engine;
  engine.configure(mono_f32());
  engine.begin(kT0);
  Feeder feed{engine};
  feed.packet(1000);
  engine.on_target_exit();
  std::vector<float> out(480);
  Chunk c;
  uint64_t total = 0;
  ReadStatus status;
  while ((status = engine.read(c, out.data(), engine.stream_id())) == ReadStatus::kChunk) {
    total += c.frames;
  }
  EXPECT_EQ(status, ReadStatus::kEnded);
  EXPECT_EQ(total, 1000u) << "the last partial chunk is delivered too";
}

TEST(CaptureEngine, ErrorIsReportedAfterWhatWasCaptured) {
  CaptureEngine engine;
  engine.configure(mono_f32());
  engine.begin(kT0);
  Feeder feed{engine};
  feed.packet(480);
  engine.on_error({procaudio::ErrorKind::kDeviceLost, "gone", "errno 5"});
  std::vector<float> out(480);
  Chunk c;
  EXPECT_EQ(engine.read(c, out.data(), engine.stream_id()), ReadStatus::kChunk);
  EXPECT_EQ(engine.read(c, out.data(), engine.stream_id()), ReadStatus::kFailed);
  EXPECT_EQ(engine.error().kind, procaudio::ErrorKind::kDeviceLost);
  EXPECT_EQ(engine.error().detail, "errno 5");
}

TEST(CaptureEngine, FlushingWakesABlockedReaderAndLaterReadsResume) {
  CaptureEngine engine;
  engine.configure(mono_f32());
  engine.begin(kT0);
  std::vector<float> out(480);
  auto reader = std::async(std::launch::async, [&] {
    Chunk c;
    return engine.read(c, out.data(), engine.stream_id());
  });
  EXPECT_EQ(reader.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout)
      << "read must block while there is nothing";
  engine.set_flushing(true);
  ASSERT_EQ(reader.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(reader.get(), ReadStatus::kFlushing);
  engine.set_flushing(false);
  Feeder feed{engine};
  feed.packet(480);
  Chunk c;
  EXPECT_EQ(engine.read(c, out.data(), engine.stream_id()), ReadStatus::kChunk);
}

TEST(CaptureEngine, AProducerOnAnotherThreadWakesTheReader) {
  CaptureEngine engine;
  engine.configure(mono_f32());
  engine.begin(kT0);
  Feeder feed{engine};
  std::thread producer([&] {
    for (int i = 0; i < 200; ++i) {
      feed.packet(441);
    }
    engine.on_target_exit();
  });
  std::vector<float> out(480);
  Chunk c;
  uint64_t total = 0;
  while (engine.read(c, out.data(), engine.stream_id()) == ReadStatus::kChunk) {
    ASSERT_EQ(out[0], static_cast<float>(c.offset));
    total += c.frames;
  }
  producer.join();
  // A producer in a tight loop may outrun the reader: whatever it lost is counted exactly.
  EXPECT_EQ(total + engine.stats().frames_dropped, 200u * 441u);
}

TEST(CaptureEngine, OverflowDropsTheOldestCountsThemAndMarksTheNextChunk) {
  CaptureEngine engine;
  engine.configure(mono_f32(480, 4800));
  engine.begin(kT0);
  Feeder feed{engine};
  for (int i = 0; i < 30; ++i) {
    feed.packet(480);  // 300 ms into a 100 ms ring, nobody reading
  }
  std::vector<float> out(480);
  Chunk c;
  ASSERT_EQ(engine.read(c, out.data(), engine.stream_id()), ReadStatus::kChunk);
  EXPECT_TRUE(c.discont);
  EXPECT_EQ(c.dropped_frames, 20u * 480u);
  EXPECT_EQ(out[0], static_cast<float>(c.offset));
  uint64_t pushed = c.frames;
  engine.note_pushed(c, 0);
  engine.on_target_exit();
  while (engine.read(c, out.data(), engine.stream_id()) == ReadStatus::kChunk) {
    EXPECT_FALSE(c.discont);
    engine.note_pushed(c, 0);
    pushed += c.frames;
  }
  const auto s = engine.stats();
  EXPECT_EQ(s.frames_dropped, 20u * 480u);
  EXPECT_EQ(s.frames_captured + s.frames_gap_filled, s.frames_pushed + s.frames_dropped);
  EXPECT_EQ(s.frames_pushed, pushed);
  EXPECT_EQ(s.discontinuities, 1u);
  EXPECT_EQ(s.resyncs, 1u);
}

TEST(CaptureEngine, IdleTargetStillProducesALiveContinuousGapStream) {
  CaptureEngine engine;
  engine.configure(mono_f32());
  engine.begin(kT0);
  // No packet at all: idle ticks every 10 ms for 200 ms.
  for (uint64_t now = kT0; now <= kT0 + 200 * kMs; now += 10 * kMs) {
    engine.on_idle(now);
  }
  std::vector<float> out(480);
  Chunk c;
  uint64_t offset = 0;
  bool first = true;
  engine.on_target_exit();
  while (engine.read(c, out.data(), engine.stream_id()) == ReadStatus::kChunk) {
    EXPECT_TRUE(c.gap);
    EXPECT_EQ(c.discont, first);
    EXPECT_EQ(c.offset, offset);
    EXPECT_EQ(c.anchor_time_ns, kT0);
    offset += c.frames;
    first = false;
  }
  // Filled up to now - margin = 180 ms, in whole chunks.
  EXPECT_EQ(offset, 180u * 48u);
}

TEST(CaptureEngine, InterruptEndsTheStreamForAReaderNowAndLater) {
  CaptureEngine engine;
  engine.configure(mono_f32());
  engine.begin(kT0);
  const uint64_t stream = engine.stream_id();
  std::vector<float> out(480);
  auto reader = std::async(std::launch::async, [&] {
    Chunk c;
    return engine.read(c, out.data(), stream);
  });
  EXPECT_EQ(reader.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  engine.interrupt();
  ASSERT_EQ(reader.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(reader.get(), ReadStatus::kFlushing);
  // A reader that arrives after the interrupt with the old stream is not left waiting.
  Chunk c;
  EXPECT_EQ(engine.read(c, out.data(), stream), ReadStatus::kFlushing);
}

TEST(CaptureEngine, BeginStartsAFreshStream) {
  CaptureEngine engine;
  engine.configure(mono_f32());
  engine.begin(kT0);
  Feeder feed{engine};
  feed.packet(960);
  engine.begin(kT0 + 1000 * kMs);
  Feeder again{engine};
  again.frames = 0;
  again.packet(480, 0, 1000 * kMs);
  std::vector<float> out(480);
  Chunk c;
  ASSERT_EQ(engine.read(c, out.data(), engine.stream_id()), ReadStatus::kChunk);
  EXPECT_TRUE(c.discont);
  EXPECT_EQ(c.offset, 0u);
  EXPECT_EQ(c.anchor_time_ns, kT0 + 1000 * kMs);
}
