// SPDX-License-Identifier: LGPL-2.1-or-later
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

TEST(CaptureEngine, AChunkLeftShortIsCompletedNotBeforeItsEnd) {
  CaptureEngine engine;
  engine.configure(mono_f32(4800, 48000));  // 100 ms chunks
  engine.begin(kT0);
  Feeder feed{engine};
  feed.packet(1024);
  // A stall longer than the fill delay (the 20 ms margin) but shorter than the chunk: the
  // audio still finds its place in it, no silence, no resync.
  const uint64_t chunk_end = kT0 + frames_ns(4800);
  EXPECT_GE(engine.idle_deadline_ns(), chunk_end);
  EXPECT_LE(engine.idle_deadline_ns(), chunk_end + 1);
  engine.on_idle(kT0 + frames_ns(1024) + 30 * kMs);
  for (uint32_t n : {1024u, 1024u, 1024u, 704u}) {
    feed.packet(n);
  }
  std::vector<float> out(4800, 7.0f);
  Chunk c;
  ASSERT_EQ(engine.read(c, out.data(), engine.stream_id()), ReadStatus::kChunk);
  EXPECT_FALSE(c.gap);
  EXPECT_EQ(c.frames, 4800u);
  EXPECT_EQ(out[1024], 1024.0f);
  EXPECT_EQ(out[4799], 4799.0f);
  EXPECT_EQ(engine.stats().frames_gap_filled, 0u);
  EXPECT_EQ(engine.stats().resyncs, 0u);
  // Then the audio stops 10 ms into a chunk: once its end has passed, the rest of it is
  // silence, and it goes out whole.
  feed.packet(480);
  const uint64_t deadline = engine.idle_deadline_ns();
  EXPECT_GE(deadline, chunk_end + frames_ns(4800));
  EXPECT_LE(deadline, chunk_end + frames_ns(4800) + 1);
  engine.on_idle(deadline - 1);  // not yet
  EXPECT_EQ(engine.stats().frames_gap_filled, 0u);
  engine.on_idle(deadline);
  ASSERT_EQ(engine.read(c, out.data(), engine.stream_id()), ReadStatus::kChunk);
  EXPECT_FALSE(c.gap) << "it holds audio";
  EXPECT_EQ(c.offset, 4800u);
  EXPECT_EQ(c.frames, 4800u);
  EXPECT_EQ(out[479], 5279.0f);
  EXPECT_EQ(out[480], 0.0f);
  EXPECT_EQ(engine.stats().frames_gap_filled, 4320u);
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

// ---- Live delivery (clause 7) ----

namespace {

// A PipeWire-like stream: 1024-frame quanta, each handed over whole `lateness_ns` after its
// first frame's time. Ticks come exactly at the engine's idle deadline; every chunk is read
// as soon as it is ready, and its push time (the arrival or tick that made it ready) is
// checked against its end time plus the live latency.
struct LiveRun {
  CaptureEngine engine;
  uint64_t frames = 0;  // real frames played so far
  uint64_t now = kT0;
  uint64_t worst = 0;  // push - chunk end, ns
  uint64_t read_frames = 0;
  uint64_t gap_frames = 0;
  std::vector<float> samples = std::vector<float>(1024);
  std::vector<float> out = std::vector<float>(480);

  explicit LiveRun(uint64_t period_ns) {
    EngineSettings s = mono_f32();
    s.idle_margin_ns = 5 * kMs;
    s.packet_period_ns = period_ns;
    engine.configure(s);
    engine.begin(kT0);
  }
  void drain() {
    Chunk c;
    while (engine.chunk_ready()) {
      ASSERT_EQ(engine.read(c, out.data(), engine.stream_id()), ReadStatus::kChunk);
      const uint64_t end = c.anchor_time_ns + frames_ns(c.offset + c.frames - c.anchor_offset);
      if (now > end) {
        worst = std::max(worst, now - end);
      }
      engine.note_pushed(c, now);
      read_frames += c.frames;
      gap_frames += c.gap ? c.frames : 0;
    }
  }
  // Plays a quantum captured at `device_ns`.
  void quantum(uint64_t device_ns, uint64_t lateness_ns) {
    // Ticks due before it arrives come first.
    idle_until(device_ns + lateness_ns);
    Packet p;
    p.data = samples.data();
    p.frames = 1024;
    p.device_time_ns = device_ns;
    p.arrival_time_ns = now = device_ns + lateness_ns;
    engine.on_packet(p);
    frames += 1024;
    drain();
  }
  // Nothing arrives until `until_ns`: the backend ticks at each deadline.
  void idle_until(uint64_t until_ns) {
    for (uint64_t d = engine.idle_deadline_ns(); d <= until_ns; d = engine.idle_deadline_ns()) {
      now = std::max(now, d);
      engine.on_idle(now);
      drain();
    }
    now = std::max(now, until_ns);
  }
};

}  // namespace

TEST(CaptureEngine, EveryChunkIdleFillIncludedIsReadyByItsEndPlusTheLiveLatency) {
  const uint64_t quantum = frames_ns(1024);
  LiveRun run(quantum);
  EXPECT_EQ(run.engine.live_latency_ns(), quantum) << "the quantum covers a 5 ms margin";
  uint64_t t = kT0 + 3 * kMs;  // the first quantum comes a little after the start
  for (int i = 0; i < 50; ++i, t += quantum) {
    run.quantum(t, kMs / 2);
  }
  t += 1000 * kMs;  // the graph stalls for a second (a frozen target): nothing arrives
  run.idle_until(t);
  for (int i = 0; i < 50; ++i, t += quantum) {
    run.quantum(t, kMs / 2);
  }
  const auto s = run.engine.stats();
  EXPECT_GE(run.gap_frames, 990u * 48u) << "the stall was filled while it lasted";
  EXPECT_EQ(s.packets_late, 0u);
  EXPECT_EQ(s.chunks_late, 0u);
  // The contract's bound: latency-time (the chunk) plus the live latency.
  EXPECT_LE(run.worst, 10 * kMs + run.engine.live_latency_ns()) << "worst " << run.worst;
  EXPECT_EQ(s.lateness_max_ns, run.worst);
  EXPECT_EQ(s.discontinuities, 1u) << "silence kept the stream continuous";
}

TEST(CaptureEngine, TheIdleMarginLearnsLatenessOnlyGrowsAndIgnoresStalls) {
  LiveRun run(10 * kMs);  // a WASAPI-like period: the frames are a period old on arrival
  EXPECT_EQ(run.engine.idle_margin_ns(), 5 * kMs);
  uint64_t t = kT0;
  run.quantum(t, 11 * kMs);
  EXPECT_EQ(run.engine.idle_margin_ns(), 11 * kMs + CaptureEngine::kMarginSlackNs);
  t += frames_ns(1024);
  run.quantum(t, 3 * kMs);  // earlier: the margin stays
  EXPECT_EQ(run.engine.idle_margin_ns(), 11 * kMs + CaptureEngine::kMarginSlackNs);
  EXPECT_EQ(run.engine.live_latency_ns(),
            11 * kMs + CaptureEngine::kMarginSlackNs + CaptureEngine::kTickSlackNs);
  t += frames_ns(1024);
  run.quantum(t, CaptureEngine::kMaxMarginNs + kMs);  // a stall: not learnt
  EXPECT_EQ(run.engine.idle_margin_ns(), 11 * kMs + CaptureEngine::kMarginSlackNs);
  run.engine.begin(kT0 + kMs * 1000);  // a fresh stream starts from the floor again
  EXPECT_EQ(run.engine.idle_margin_ns(), 5 * kMs);
}

TEST(CaptureEngine, AudioForTimeAlreadyFilledIsKeptAndCounted) {
  const uint64_t quantum = frames_ns(1024);
  LiveRun run(quantum);
  uint64_t t = kT0;
  run.quantum(t, kMs / 2);
  t += quantum;
  // The next quantum comes 80 ms after its time (more than the margin, less than a stall):
  // the ticks before it filled its first 40 ms or so.
  run.quantum(t, 80 * kMs);
  run.engine.on_target_exit();
  run.drain();
  const auto s = run.engine.stats();
  EXPECT_EQ(s.packets_late, 1u);
  EXPECT_EQ(s.frames_captured, 2048u);
  EXPECT_EQ(s.frames_captured + s.frames_gap_filled, s.frames_pushed) << "nothing dropped";
  EXPECT_EQ(run.engine.idle_margin_ns(), 85 * kMs) << "and the margin learnt it";
}

TEST(CaptureEngine, TheIdleDeadlineIsNeverOnceTheStreamEnded) {
  LiveRun run(frames_ns(1024));
  EXPECT_EQ(run.engine.idle_deadline_ns(),
            kT0 + 10 * kMs + frames_ns(1024) - CaptureEngine::kTickSlackNs)
      << "a chunk after the start plus the fill delay (the quantum less a tick's slack)";
  run.engine.on_target_exit();
  EXPECT_EQ(run.engine.idle_deadline_ns(), UINT64_MAX);
}

// Found by the fuzzer: a stream whose packets are stamped before the capture started (a
// device clock behind) must still be filled up to a tick, or its deadline stays behind.
TEST(CaptureEngine, ATickFillsUpToNowWhenThePacketsWereStampedBeforeTheStart) {
  CaptureEngine engine;
  engine.configure(mono_f32());
  engine.begin(kT0);
  Packet p;
  std::vector<float> samples(480);
  p.data = samples.data();
  p.frames = 480;
  p.device_time_ns = kT0 - 700 * kMs;
  p.arrival_time_ns = kT0 + kMs;
  engine.on_packet(p);
  const uint64_t now = kT0 + 11 * kMs;
  engine.on_idle(now);
  EXPECT_GT(engine.idle_deadline_ns(), now);
  EXPECT_EQ(engine.stats().frames_gap_filled, 680u * 48u) << "up to now - the 20 ms margin";
}

TEST(CaptureEngine, TheMarginLearnsNothingFromTheBacklogOfABurst) {
  // The OS held ten quanta and hands them over at once: the first is a stall (213 ms late),
  // the ones behind it came sooner after it than their audio could have: backlog.
  const uint64_t quantum = frames_ns(1024);
  LiveRun run(quantum);
  const uint64_t arrival = kT0 + 20 * quantum;
  for (int i = 0; i < 10; ++i) {
    const uint64_t device = arrival - (10 - i) * quantum;
    run.quantum(device, arrival - device);
  }
  EXPECT_EQ(run.engine.idle_margin_ns(), 5 * kMs);
  EXPECT_EQ(run.engine.stats().frames_captured, 10u * 1024u);
}
