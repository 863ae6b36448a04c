// SPDX-License-Identifier: LGPL-2.1-or-later
// Cost of the capture engine per 10 ms chunk of 48 kHz stereo F32 (480 frames, 3840 bytes).
// The peer in the same run, BM_Peer_TwoMemcpy, is the floor any hand-off has to pay: the
// samples copied in and copied out once. Ratios against it survive noisy machines.
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "core/capture_engine.h"
#include "core/frame_ring.h"
#include "core/timeline.h"

using namespace procaudio;

namespace {
constexpr uint32_t kChunk = 480;
constexpr uint32_t kBytesPerFrame = 8;
constexpr uint64_t kMs = 1'000'000;
}  // namespace

static void BM_Peer_TwoMemcpy(benchmark::State &state) {
  std::vector<uint8_t> in(kChunk * kBytesPerFrame, 1), mid(in.size()), out(in.size());
  for (auto _ : state) {
    std::memcpy(mid.data(), in.data(), in.size());
    benchmark::ClobberMemory();
    std::memcpy(out.data(), mid.data(), mid.size());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Peer_TwoMemcpy);

static void BM_FrameRing_WriteThenRead(benchmark::State &state) {
  FrameRing ring(kBytesPerFrame, kChunk, 9600);
  std::vector<uint8_t> in(kChunk * kBytesPerFrame, 1), out(in.size());
  uint64_t offset = 0;
  for (auto _ : state) {
    ChunkHeader h;
    h.offset = offset;
    ring.open_slot(h);
    ring.append(in.data(), kChunk);
    ring.commit(0);
    uint64_t skipped = 0;
    ring.read(h, out.data(), skipped);
    benchmark::DoNotOptimize(out.data());
    offset += kChunk;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FrameRing_WriteThenRead);

static void BM_Timeline_PlaceJitteredPacket(benchmark::State &state) {
  Timeline timeline(48000, 40 * kMs);
  uint64_t t = 1'000'000'000;
  int i = 0;
  for (auto _ : state) {
    const int64_t jitter = (i++ % 5 - 2) * 1'000'000;
    benchmark::DoNotOptimize(timeline.place(t + jitter, kChunk, 0));
    t += 10 * kMs;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Timeline_PlaceJitteredPacket);

// The whole producer and consumer path: packet in (timeline, ring), chunk out.
static void BM_Engine_PacketToChunk(benchmark::State &state) {
  CaptureEngine engine;
  EngineSettings settings;
  settings.chunk_frames = kChunk;
  settings.capacity_frames = 9600;
  engine.configure(settings);
  engine.begin(0);
  std::vector<float> in(kChunk * 2, 0.5f), out(in.size());
  Packet packet;
  packet.data = in.data();
  packet.frames = static_cast<uint32_t>(state.range(0));
  uint64_t t = 1'000'000'000;
  const uint64_t packet_ns = scale_u64(packet.frames, 1'000'000'000, 48000);
  uint64_t frames_in = 0, frames_out = 0;
  Chunk chunk;
  for (auto _ : state) {
    // Feed until a chunk is ready, then take it: one 10 ms chunk per iteration.
    while (frames_in < frames_out + kChunk) {
      packet.device_time_ns = t;
      packet.arrival_time_ns = t;
      engine.on_packet(packet);
      frames_in += packet.frames;
      t += packet_ns;
    }
    engine.read(chunk, out.data(), engine.stream_id());
    frames_out += chunk.frames;
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Engine_PacketToChunk)->Arg(480)->Arg(441)->Arg(1024);

BENCHMARK_MAIN();
