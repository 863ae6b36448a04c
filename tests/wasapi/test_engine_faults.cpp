// SPDX-License-Identifier: LGPL-2.1-or-later
// Faults on Windows, against the COM fakes of the process-loopback client, with the real
// engine behind the capture loop and a reader that takes chunks as the element's streaming
// thread does: what a user of the element would see of each fault, in the chunks' flags,
// their stream offsets and the engine's counters.
//   - no packets for 10 s (an idle target sends none): live GAP silence, within the live
//     latency (the timestamp contract's clause 7);
//   - a burst of 2 s of packets at once, after the engine filled their time: every frame
//     kept, placed after the silence with a DISCONT, counted as late;
//   - QPC stepping back: a resync with a DISCONT, every frame kept;
//   - the device invalidated, or the audio service gone, mid-stream: what was captured
//     first, then the error (device lost); exact counts.
#include <windows.h>

#include <audioclient.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "backend_fixture.h"
#include "core/timeline.h"

namespace procaudio {
namespace wasapi {
namespace {

using testing::BackendTest;
using testing::packet;
using testing::qpc_now;

constexpr uint64_t kMs = 1'000'000;

// The streaming thread: reads chunks until the stream ends, fails or is flushed (a watchdog
// flushes it after `limit`, so that a test never hangs), noting each push.
class Reader {
 public:
  Reader(CaptureEngine &engine, std::chrono::seconds limit = std::chrono::seconds(30))
      : engine_(engine), thread_([this, limit] { run(limit); }) {}
  ~Reader() { finish(); }

  struct Record {
    Chunk chunk;
    float first = 0;         // the first sample
    uint64_t pushed_ns = 0;  // when the reader had it
  };
  // Waits (bounded) until `done(chunks)` holds.
  bool wait(const std::function<bool(const std::vector<Record> &)> &done,
            std::chrono::milliseconds timeout = std::chrono::milliseconds(15000)) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cond_.wait_for(lock, timeout, [&] { return done(records_) || ended_; }) &&
           done(records_);
  }
  // Flushes the reader out and joins it; returns what it read and how it ended.
  std::vector<Record> finish() {
    if (thread_.joinable()) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
      }
      cond_.notify_all();
      engine_.set_flushing(true);
      thread_.join();
    }
    std::lock_guard<std::mutex> lock(mutex_);
    return records_;
  }
  // Waits (bounded) until the reader saw the end, an error or a flush.
  bool wait_ended(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cond_.wait_for(lock, timeout, [&] { return ended_; });
  }
  CaptureEngine::ReadStatus status() {
    std::lock_guard<std::mutex> lock(mutex_);
    return status_;
  }

 private:
  void run(std::chrono::seconds limit) {
    std::thread watchdog([this, limit] {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!cond_.wait_for(lock, limit, [this] { return stop_ || ended_; })) {
        engine_.set_flushing(true);
      }
    });
    std::vector<float> out(2 * engine_.settings().chunk_frames);
    const uint64_t stream = engine_.stream_id();
    for (;;) {
      Record r;
      const CaptureEngine::ReadStatus status = engine_.read(r.chunk, out.data(), stream);
      std::lock_guard<std::mutex> lock(mutex_);
      if (status != CaptureEngine::ReadStatus::kChunk) {
        status_ = status;
        ended_ = true;
        cond_.notify_all();
        break;
      }
      r.pushed_ns = monotonic_now_ns();
      engine_.note_pushed(r.chunk, r.pushed_ns);
      r.first = out[0];
      records_.push_back(r);
      cond_.notify_all();
    }
    watchdog.join();
  }

  CaptureEngine &engine_;
  std::mutex mutex_;
  std::condition_variable cond_;
  std::vector<Record> records_;
  CaptureEngine::ReadStatus status_ = CaptureEngine::ReadStatus::kChunk;
  bool ended_ = false;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the rest is there
};

uint64_t frames_of(const std::vector<Reader::Record> &records, bool gap) {
  uint64_t n = 0;
  for (const auto &r : records) {
    n += r.chunk.gap == gap ? r.chunk.frames : 0;
  }
  return n;
}

// Offsets run on exactly, and DISCONT is only where the test expects it (indexes).
void expect_continuous(const std::vector<Reader::Record> &records,
                       const std::vector<size_t> &disconts) {
  std::vector<size_t> seen;
  for (size_t i = 0; i < records.size(); ++i) {
    if (records[i].chunk.discont) {
      seen.push_back(i);
    }
    if (i > 0) {
      EXPECT_EQ(records[i].chunk.offset, records[i - 1].chunk.offset + records[i - 1].chunk.frames)
          << "chunk " << i;
    }
  }
  EXPECT_EQ(seen, disconts);
}

void expect_exact_counts(const CaptureEngine &engine, const std::vector<Reader::Record> &read) {
  const EngineStats s = engine.stats();
  EXPECT_EQ(s.frames_dropped, 0u);
  EXPECT_EQ(s.frames_captured + s.frames_gap_filled, s.frames_pushed);
  EXPECT_EQ(s.frames_pushed, frames_of(read, true) + frames_of(read, false));
  EXPECT_EQ(s.frames_gap_filled, frames_of(read, true));
}

// Queues `count` 10 ms packets from QPC `qpc` on (100 ns units), their first samples
// numbered from `first`, and signals once, after the last.
void push_run(testing::FakeStream &stream, uint64_t qpc, uint32_t count, uint32_t first = 0) {
  for (uint32_t i = 0; i < count; ++i) {
    stream.push(packet(480, qpc + i * 100'000, 0, static_cast<float>(first + i)), i + 1 == count);
  }
}

size_t first_audio(const std::vector<Reader::Record> &records, size_t from = 0) {
  for (size_t i = from; i < records.size(); ++i) {
    if (!records[i].chunk.gap) {
      return i;
    }
  }
  return records.size();
}

TEST_F(BackendTest, TenSecondsWithoutPacketsAreGapSilenceWithinTheLiveLatency) {
  CaptureEngine &engine = new_engine();
  engine.begin(monotonic_now_ns());
  auto stream = start_default(engine);
  ASSERT_TRUE(stream);
  Reader reader(engine);
  ASSERT_TRUE(reader.wait([](const auto &r) { return frames_of(r, true) >= 10 * 48000; }));
  stream->push(packet(480, qpc_now() - 10 * kMs / 100));  // 10 ms old, as a packet is
  ASSERT_TRUE(reader.wait([](const auto &r) { return frames_of(r, false) >= 480; }));
  backend_->stop();
  const auto read = reader.finish();
  const EngineStats stats = engine.stats();
  std::printf("  %zu chunks, live latency %.1f ms, lateness-max %.1f ms\n", read.size(),
              engine.live_latency_ns() / 1e6, stats.lateness_max_ns / 1e6);
  expect_continuous(read, {0});
  EXPECT_EQ(first_audio(read), read.size() - 1) << "GAP all the way, then the packet";
  EXPECT_EQ(stats.packets_late, 0u);
  // Live: the silence goes out as its time passes, within the live latency. Judged on the
  // 95th percentile of the thousand chunks, not the worst ones: wine's timers and the
  // scheduler hold some back by up to tens of ms (seen: 51 ms once in three runs on an idle
  // machine, a 99th percentile of 41.6 ms), which says nothing of the engine; ticking late
  // every time would show here.
  std::vector<uint64_t> lateness;
  for (const auto &r : read) {
    const uint64_t end =
        r.chunk.anchor_time_ns +
        procaudio::scale_u64(r.chunk.offset + r.chunk.frames - r.chunk.anchor_offset, 1'000'000'000,
                             engine.settings().format.rate);
    lateness.push_back(r.pushed_ns > end ? r.pushed_ns - end : 0);
  }
  std::sort(lateness.begin(), lateness.end());
  const uint64_t p95 = lateness[lateness.size() * 95 / 100];
  std::printf("  lateness: median %.1f ms, 95th percentile %.1f ms, 99th %.1f ms\n",
              lateness[lateness.size() / 2] / 1e6, p95 / 1e6,
              lateness[lateness.size() * 99 / 100] / 1e6);
  EXPECT_LE(p95, 10 * kMs + engine.live_latency_ns());
  EXPECT_LE(stats.chunks_late, read.size() / 20);
  expect_exact_counts(engine, read);
}

TEST_F(BackendTest, ABurstOfTwoSecondsOfPacketsAtOnceIsKeptAfterTheSilenceAndCounted) {
  CaptureEngine &engine = new_engine();
  EngineSettings settings = engine.settings();
  settings.capacity_frames = 4 * 48000;  // buffer-time=4 s: this burst fits
  engine.configure(settings);
  const uint64_t t0 = monotonic_now_ns();
  engine.begin(t0);
  auto stream = start_default(engine);
  ASSERT_TRUE(stream);
  Reader reader(engine);
  // Nothing comes for 2 s: the engine fills them.
  ASSERT_TRUE(reader.wait([](const auto &r) { return frames_of(r, true) >= 190 * 480; }));
  // Then the audio engine hands over the 2 s it held, at once: 200 packets from t0 on.
  push_run(*stream, t0 / 100, 200);
  ASSERT_TRUE(reader.wait([](const auto &r) { return frames_of(r, false) >= 200 * 480; }));
  backend_->stop();
  const auto read = reader.finish();
  const EngineStats stats = engine.stats();
  const size_t audio = first_audio(read);
  ASSERT_LT(audio, read.size());
  EXPECT_TRUE(read[audio].chunk.discont) << "placed after the silence: a new anchor";
  expect_continuous(read, {0, audio});
  EXPECT_EQ(read[audio].first, 0.f) << "from its first frame on";
  EXPECT_EQ(stats.frames_captured, 200u * 480u);
  EXPECT_EQ(frames_of(read, false), 200u * 480u) << "every frame kept";
  EXPECT_EQ(stats.packets_late, 1u) << "the first came for time already filled";
  EXPECT_EQ(engine.idle_margin_ns(), WasapiBackend::kIdleMarginNs)
      << "a stall and its backlog teach the margin nothing";
  EXPECT_GE(stats.resyncs, 1u);
  expect_exact_counts(engine, read);
}

TEST_F(BackendTest, QpcSteppingBackIsAResyncWithADiscontAndLosesNothing) {
  CaptureEngine &engine = new_engine();
  engine.begin(monotonic_now_ns());
  auto stream = start_default(engine);
  ASSERT_TRUE(stream);
  Reader reader(engine);
  const uint64_t t = qpc_now();
  push_run(*stream, t, 10);
  // The clock steps back 100 ms: the next packets say they are older than the last ones.
  push_run(*stream, t, 10, 10);
  ASSERT_TRUE(reader.wait([](const auto &r) { return frames_of(r, false) >= 20 * 480; }));
  backend_->stop();
  const auto read = reader.finish();
  const size_t start = first_audio(read);
  size_t stepped = read.size();
  for (size_t i = start; i < read.size(); ++i) {
    if (!read[i].chunk.gap && read[i].first == 10.f) {
      stepped = i;
    }
  }
  ASSERT_LT(stepped, read.size());
  expect_continuous(
      read, start == 0 ? std::vector<size_t>{0, stepped} : std::vector<size_t>{0, start, stepped});
  EXPECT_EQ(frames_of(read, false), 20u * 480u);
  EXPECT_GE(engine.stats().resyncs, 1u);
  expect_exact_counts(engine, read);
}

TEST_F(BackendTest, DeviceLostMidStreamEndsAfterWhatWasCapturedWithExactCounts) {
  for (HRESULT hr : {AUDCLNT_E_DEVICE_INVALIDATED, static_cast<HRESULT>(0x800706BAu)}) {
    make_backend(10);
    CaptureEngine &engine = new_engine();
    engine.begin(monotonic_now_ns());
    auto stream = start_default(engine);
    ASSERT_TRUE(stream);
    Reader reader(engine);
    push_run(*stream, qpc_now(), 5);
    ASSERT_TRUE(reader.wait([](const auto &r) { return frames_of(r, false) >= 5 * 480; }));
    stream->fail_with(hr);
    ASSERT_TRUE(reader.wait_ended());
    EXPECT_EQ(reader.status(), CaptureEngine::ReadStatus::kFailed);
    EXPECT_EQ(engine.error().kind, ErrorKind::kDeviceLost) << engine.error().detail;
    const auto read = reader.finish();
    EXPECT_EQ(frames_of(read, false), 5u * 480u) << "what was captured went out first";
    expect_exact_counts(engine, read);
    backend_->close();
  }
}

}  // namespace
}  // namespace wasapi
}  // namespace procaudio
