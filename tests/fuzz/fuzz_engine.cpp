// SPDX-License-Identifier: LGPL-2.1-or-later
// libFuzzer target over the capture engine: the input is a program of producer and consumer
// steps (packets of any size with device times that run on, jitter, jump ahead or back, OS
// flags, idle ticks, re-attachments, consumer stalls and reads), run on one thread. After
// every chunk and at the end it checks the contract's invariants and aborts on a breach:
//   - stream offsets continue exactly, except across frames the engine counted as dropped;
//   - a chunk after dropped frames, and the first chunk, are DISCONT;
//   - within a stretch (no DISCONT) the anchor stays, so PTS(n+1) == PTS(n) + DURATION(n);
//   - GAP chunks are silence; other chunks hold the producer's frames in order, none twice;
//   - once drained: captured + gap-filled == pushed + dropped, and the counters agree with
//     what the consumer saw;
//   - an idle tick leaves no silence due: the next idle deadline is ahead of it.
// Samples are their packet frame's serial number (from 1), or 0 where the OS said silent.
//
//   fuzz-engine [libFuzzer flags] [CORPUS_DIR...]
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core/capture_engine.h"
#include "core/timeline.h"

namespace {

using procaudio::CaptureEngine;
using procaudio::Chunk;
using procaudio::EngineSettings;
using procaudio::Packet;
using procaudio::TargetState;

constexpr uint32_t kRate = 48000;
constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kT0 = 1'000'000'000'000;  // device time of the first packet
// Float samples count frames exactly up to 2^24: the program stops feeding before that.
constexpr uint64_t kMaxFrames = 1u << 23;
// And stops after two minutes of stream time, so that draining stays quick.
constexpr uint64_t kMaxSpanNs = 120'000'000'000;
// Device times never step back below this.
constexpr uint64_t kFloor = kT0 / 2;

uint64_t back(uint64_t t, uint64_t by) {
  return t - std::min(t - kFloor, by);
}

#define CHECK(cond)                                                                     \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

// Reads the program's bytes; zeros once they run out.
struct Input {
  const uint8_t *data;
  size_t size;
  size_t pos = 0;
  bool done() const { return pos >= size; }
  uint8_t u8() { return pos < size ? data[pos++] : 0; }
  uint16_t u16() { return static_cast<uint16_t>(u8() | (u8() << 8)); }
};

uint64_t frames_ns(uint64_t frames) {
  return procaudio::scale_u64(frames, 1'000'000'000, kRate);
}

struct Checker {
  CaptureEngine &engine;
  std::vector<float> out;
  uint64_t chunks = 0, discont_chunks = 0, pushed = 0, next_offset = 0;
  uint64_t anchor_offset = 0, anchor_time = 0;
  float last_serial = 0.0f;
  uint64_t now = 0;

  bool read_one() {
    Chunk c;
    const auto status = engine.read(c, out.data(), engine.stream_id());
    if (status != CaptureEngine::ReadStatus::kChunk) {
      return false;
    }
    CHECK(c.frames > 0 && c.frames <= engine.settings().chunk_frames);
    CHECK(c.offset == next_offset + c.dropped_frames);
    if (chunks == 0 || c.dropped_frames > 0) {
      CHECK(c.discont);
    }
    if (!c.discont) {  // a stretch keeps its anchor: PTS follow from offsets exactly
      CHECK(c.anchor_offset == anchor_offset && c.anchor_time_ns == anchor_time);
    }
    CHECK(c.anchor_offset <= c.offset);
    anchor_offset = c.anchor_offset;
    anchor_time = c.anchor_time_ns;
    for (uint32_t i = 0; i < c.frames; ++i) {
      const float v = out[i];
      if (c.gap) {
        CHECK(v == 0.0f);
      } else if (v != 0.0f) {  // real audio: in order, never twice
        CHECK(v > last_serial);
        last_serial = v;
      }
    }
    engine.note_pushed(c, now);
    next_offset = c.offset + c.frames;
    pushed += c.frames;
    discont_chunks += c.discont ? 1 : 0;
    ++chunks;
    return true;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Input in{data, size};
  EngineSettings settings;
  settings.format.channels = 1;
  settings.format.rate = kRate;
  settings.chunk_frames = 96 + 96 * (in.u8() % 10);  // 2 .. 20 ms
  settings.capacity_frames = settings.chunk_frames * (2 + in.u8() % 30);
  settings.alignment_threshold_ns = (1 + in.u8() % 80) * kMs;  // 1 .. 80 ms
  settings.idle_margin_ns = (1 + in.u8() % 100) * kMs;
  settings.packet_period_ns = (in.u8() % 5) * 10'666'667;  // none, or 512 .. 2048 frames

  CaptureEngine engine;
  engine.configure(settings);
  engine.begin(kT0);
  Checker check{engine, std::vector<float>(settings.chunk_frames)};

  uint64_t device_end = kT0;  // where the previous packet's device time ended
  uint64_t now = kT0;         // arrival clock: monotonic, like the OS's
  float serial = 0.0f;
  uint64_t fed = 0;
  uint32_t pid = 100;
  std::vector<float> samples;

  while (!in.done() && fed < kMaxFrames && now - kT0 < kMaxSpanNs) {
    switch (in.u8() % 8) {
      case 0:
      case 1:
      case 2: {  // a packet
        const uint32_t frames = 1 + in.u16() % 4096;
        const uint8_t how = in.u8();
        const uint16_t amount = in.u16();
        uint64_t device = device_end;
        switch (how % 8) {
          case 5:  // a jump ahead: lost time, up to 6.5 s
            device += uint64_t{amount} * 100'000;
            break;
          case 6:  // a step back, up to 655 ms
            device = back(device, uint64_t{amount} * 10'000);
            break;
          default:  // on time, with up to +-1 ms of jitter
            device = back(device + (amount & 0xff) * 3'900, (amount >> 8) * 3'900);
            break;
        }
        uint32_t flags = 0;
        if ((how & 0x30) == 0x30)
          flags |= procaudio::kPacketSilent;
        if ((how & 0xc0) == 0xc0)
          flags |= procaudio::kPacketDiscontinuity;
        if ((how & 0x48) == 0x48)
          flags |= procaudio::kPacketTimestampError;
        samples.resize(frames);
        for (uint32_t i = 0; i < frames; ++i) {
          samples[i] = (flags & procaudio::kPacketSilent) != 0 ? 0.0f : ++serial;
        }
        now = std::max(now, device + frames_ns(frames)) + (in.u8() % 64) * kMs / 2;
        Packet p;
        p.data = (flags & procaudio::kPacketSilent) != 0 ? nullptr : samples.data();
        p.frames = frames;
        p.flags = flags;
        p.device_time_ns = device;
        p.arrival_time_ns = now;
        engine.on_packet(p);
        device_end = device + frames_ns(frames);
        fed += frames;
        break;
      }
      case 3:  // an idle tick after up to 6.5 s without packets
        now += uint64_t{in.u16()} * 100'000;
        engine.on_idle(now);
        // Live delivery: a tick leaves no silence due, so the next deadline is ahead.
        CHECK(engine.idle_deadline_ns() + frames_ns(1) > now);
        break;
      case 4:  // the consumer reads what is there, up to n chunks
        check.now = now;
        for (int n = in.u8() % 64; n > 0 && engine.chunk_ready(); --n) {
          CHECK(check.read_one());
        }
        break;
      case 5:  // the target is gone and followed to a new process
        engine.on_target_state({TargetState::Phase::kWaiting, 0, 0});
        engine.on_target_state({TargetState::Phase::kCapturing, ++pid, 1});
        break;
      case 6:  // target states taken as the element does, up to what was read
        engine.take_target_states(check.next_offset);
        break;
      case 7:  // the consumer stalls: nothing is read for a while (the ring may overflow)
        break;
    }
  }

  // The end: what was captured is handed out, then kEnded.
  engine.on_target_exit();
  check.now = now;
  while (check.read_one()) {
  }
  Chunk c;
  CHECK(engine.read(c, check.out.data(), engine.stream_id()) == CaptureEngine::ReadStatus::kEnded);
  const procaudio::EngineStats s = engine.stats();
  CHECK(s.frames_captured == fed);
  CHECK(s.frames_pushed == check.pushed);
  CHECK(s.chunks_pushed == check.chunks);
  CHECK(s.discontinuities == check.discont_chunks);
  CHECK(s.frames_captured + s.frames_gap_filled == s.frames_pushed + s.frames_dropped);
  CHECK(check.next_offset == s.frames_pushed + s.frames_dropped);
  return 0;
}
