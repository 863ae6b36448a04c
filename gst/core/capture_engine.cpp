// SPDX-License-Identifier: LGPL-2.1-or-later
#include "capture_engine.h"

#include <algorithm>
#include <cstring>

namespace procaudio {

namespace {
constexpr auto kRelaxed = std::memory_order_relaxed;

void add(std::atomic<uint64_t> &counter, uint64_t n) {
  counter.fetch_add(n, kRelaxed);
}
}  // namespace

CaptureEngine::CaptureEngine(Logger logger) : log_(std::move(logger)) {
  configure(settings_);
}

CaptureEngine::~CaptureEngine() = default;

void CaptureEngine::configure(const EngineSettings &settings) {
  settings_ = settings;
  settings_.chunk_frames = std::max<uint32_t>(settings_.chunk_frames, 1);
  ring_ = std::make_unique<FrameRing>(settings_.format.bytes_per_frame(), settings_.chunk_frames,
                                      settings_.capacity_frames);
  timeline_ = std::make_unique<Timeline>(settings_.format.rate, settings_.alignment_threshold_ns);
  // Rounded up: a tick at a chunk's end plus the fill delay finds the whole chunk due.
  const uint32_t rate = std::max<uint32_t>(settings_.format.rate, 1);
  chunk_ns_ = (uint64_t{settings_.chunk_frames} * 1'000'000'000 + rate - 1) / rate;
  margin_ns_.store(settings_.idle_margin_ns, kRelaxed);
  PROCAUDIO_DEBUG(log_,
                  "engine: %u Hz, %u ch, %u B/frame, chunk %u frames, ring %u slots (%llu frames)",
                  settings_.format.rate, settings_.format.channels,
                  settings_.format.bytes_per_frame(), settings_.chunk_frames, ring_->slot_count(),
                  static_cast<unsigned long long>(ring_->capacity_frames()));
}

void CaptureEngine::begin(uint64_t start_ns) {
  ring_->reset();
  timeline_->reset();
  start_ns_ = start_ns;
  discont_pending_ = true;
  committed_unwoken_ = false;
  last_arrival_ns_ = start_ns;
  margin_ns_.store(settings_.idle_margin_ns, kRelaxed);
  previous_device_ns_ = 0;
  previous_arrival_ns_ = 0;
  pending_gap_ = {};
  detached_ = false;
  std::lock_guard<std::mutex> lock(mutex_);
  end_.store(End::kNone);
  error_ = {};
  target_states_.clear();
  stream_.fetch_add(1);
}

void CaptureEngine::interrupt() {
  std::lock_guard<std::mutex> lock(mutex_);
  stream_.fetch_add(1);
  cond_.notify_all();
}

void CaptureEngine::reset_stats() {
#define PROCAUDIO_STAT_RESET(field, name) counters_.field.store(0, kRelaxed);
  PROCAUDIO_ENGINE_STATS(PROCAUDIO_STAT_RESET)
#undef PROCAUDIO_STAT_RESET
}

// ---- Live delivery ----

uint64_t CaptureEngine::fill_delay_ns() const {
  const uint64_t period = settings_.packet_period_ns;
  return std::max(margin_ns_.load(kRelaxed), period > kTickSlackNs ? period - kTickSlackNs : 0);
}

uint64_t CaptureEngine::live_latency_ns() const {
  return fill_delay_ns() + kTickSlackNs;
}

void CaptureEngine::learn_lateness(const Packet &packet) {
  // Backlog: a packet that came right behind the previous one, sooner than its audio could
  // have been captured after the previous packet's (the tail of a burst the OS held, a
  // period read in pieces). Its lateness is the stall's, not a pattern.
  const bool backlog = packet.device_time_ns > previous_device_ns_ &&
                       packet.arrival_time_ns >= previous_arrival_ns_ &&
                       2 * (packet.arrival_time_ns - previous_arrival_ns_) <
                           packet.device_time_ns - previous_device_ns_;
  previous_device_ns_ = packet.device_time_ns;
  previous_arrival_ns_ = packet.arrival_time_ns;
  if (backlog || packet.arrival_time_ns <= packet.device_time_ns) {
    return;
  }
  const uint64_t lateness = packet.arrival_time_ns - packet.device_time_ns;
  if (lateness > kMaxMarginNs) {
    return;  // a stall (a frozen graph, a burst of held packets): not what to wait for
  }
  const uint64_t margin = std::min(lateness + kMarginSlackNs, kMaxMarginNs);
  if (margin > margin_ns_.load(kRelaxed)) {
    PROCAUDIO_DEBUG(log_,
                    "idle margin %llu -> %llu us: a packet came %llu us after its first frame",
                    static_cast<unsigned long long>(margin_ns_.load(kRelaxed) / 1000),
                    static_cast<unsigned long long>(margin / 1000),
                    static_cast<unsigned long long>(lateness / 1000));
    margin_ns_.store(margin, kRelaxed);
  }
}

uint64_t CaptureEngine::idle_deadline_ns() const {
  if (end_.load(kRelaxed) != End::kNone) {
    return UINT64_MAX;
  }
  const uint64_t end =
      timeline_->started() ? timeline_->time_at(timeline_->next_offset()) : start_ns_;
  if (!ring_->slot_is_open()) {
    return end + chunk_ns_ + fill_delay_ns();  // a whole chunk of silence is due
  }
  // A chunk the audio left short is completed once no more audio can come for it, but not
  // before its end time: its rest must not reach into the future. (Rounded up: the tick then
  // finds it due.)
  const uint32_t rate = std::max<uint32_t>(settings_.format.rate, 1);
  const uint64_t chunk_end = end + (uint64_t{ring_->slot_room()} * 1'000'000'000 + rate - 1) / rate;
  return std::max(end + fill_delay_ns(), chunk_end);
}

// ---- Producer ----

// Commits without waking: the packet's handler wakes the reader once, after its last commit
// (a 1024-frame quantum completes two 10 ms chunks; one wake-up reads both).
void CaptureEngine::commit_open(uint64_t ready_time_ns) {
  if (ring_->slot_is_open()) {
    ring_->commit(ready_time_ns);
    committed_unwoken_ = true;
  }
}

void CaptureEngine::write_gap(uint64_t offset, uint64_t frames, uint64_t anchor_offset,
                              uint64_t anchor_time_ns, uint64_t ready_time_ns) {
  if (frames == 0) {
    return;
  }
  commit_open(ready_time_ns);  // real audio before the gap goes out now, not later
  ChunkHeader header;
  header.offset = offset;
  header.frames = frames;
  header.flags = kChunkGap | (discont_pending_ ? kChunkDiscont : kChunkNone);
  header.anchor_offset = anchor_offset;
  header.anchor_time_ns = anchor_time_ns;
  discont_pending_ = false;
  ring_->open_slot(header);
  commit_open(ready_time_ns);
  add(counters_.frames_gap_filled, frames);
}

void CaptureEngine::write_frames(const void *data, uint32_t frames, uint64_t ready_time_ns) {
  const auto *bytes = static_cast<const uint8_t *>(data);
  const uint32_t bytes_per_frame = ring_->bytes_per_frame();
  uint64_t offset = timeline_->next_offset() - frames;
  while (frames > 0) {
    if (ring_->slot_is_open() && ring_->slot_room() == 0) {
      commit_open(ready_time_ns);
    }
    if (!ring_->slot_is_open()) {
      ChunkHeader header;
      header.offset = offset;
      header.flags = discont_pending_ ? kChunkDiscont : kChunkNone;
      header.anchor_offset = timeline_->anchor_offset();
      header.anchor_time_ns = timeline_->anchor_time_ns();
      discont_pending_ = false;
      ring_->open_slot(header);
    }
    const uint32_t n = std::min(frames, ring_->slot_room());
    ring_->append(bytes, n);
    if (bytes != nullptr) {
      bytes += uint64_t{n} * bytes_per_frame;
    }
    frames -= n;
    offset += n;
  }
  if (ring_->slot_room() == 0) {
    commit_open(ready_time_ns);
  }
}

void CaptureEngine::on_packet(const Packet &packet) {
  add(counters_.packets, 1);
  add(counters_.frames_captured, packet.frames);
  const bool silent = (packet.flags & kPacketSilent) != 0;
  if (silent) {
    add(counters_.frames_silent, packet.frames);
  }
  if (end_.load(kRelaxed) != End::kNone || packet.frames == 0) {
    return;
  }
  last_arrival_ns_ = packet.arrival_time_ns;
  learn_lateness(packet);

  const Timeline::Placement placement =
      timeline_->place(packet.device_time_ns, packet.frames, packet.flags);
  if (placement.into_fill) {
    add(counters_.packets_late, 1);
    PROCAUDIO_DEBUG(log_, "a packet came %llu us after its first frame, for time already filled",
                    static_cast<unsigned long long>(
                        packet.arrival_time_ns > packet.device_time_ns
                            ? (packet.arrival_time_ns - packet.device_time_ns) / 1000
                            : 0));
  }
  write_gap(placement.fill_offset, placement.fill_frames, placement.fill_anchor_offset,
            placement.fill_anchor_time_ns, packet.arrival_time_ns);
  switch (placement.resync) {
    case Timeline::Resync::kNone:
      break;
    case Timeline::Resync::kStart:
      discont_pending_ = true;
      break;
    case Timeline::Resync::kReattach:
      PROCAUDIO_DEBUG(log_, "re-attached at offset %llu, device time %llu ns",
                      static_cast<unsigned long long>(timeline_->anchor_offset()),
                      static_cast<unsigned long long>(packet.device_time_ns));
      commit_open(packet.arrival_time_ns);  // the new process's audio starts a new slot
      discont_pending_ = true;
      add(counters_.reattachments, 1);
      break;
    case Timeline::Resync::kDeviceDiscontinuity:
    case Timeline::Resync::kDrift:
      PROCAUDIO_DEBUG(
          log_, "resync (%s) at offset %llu, device time %llu ns",
          placement.resync == Timeline::Resync::kDrift ? "drift" : "device discontinuity",
          static_cast<unsigned long long>(timeline_->anchor_offset()),
          static_cast<unsigned long long>(packet.device_time_ns));
      commit_open(packet.arrival_time_ns);  // a new anchor starts a new slot
      discont_pending_ = true;
      add(counters_.resyncs, 1);
      break;
  }
  write_frames(silent ? nullptr : packet.data, packet.frames, packet.arrival_time_ns);
  wake_consumer();
}

void CaptureEngine::on_idle(uint64_t now_ns) {
  if (end_.load(kRelaxed) != End::kNone) {
    return;
  }
  const uint64_t delay = fill_delay_ns();
  const uint64_t until = now_ns > delay ? now_ns - delay : 0;
  if (!timeline_->started() && until < start_ns_) {
    return;  // not even the start of the capture is safely behind us yet
  }
  if (ring_->slot_is_open() && timeline_->time_at(timeline_->next_offset()) <= until &&
      timeline_->time_at(timeline_->next_offset() + ring_->slot_room()) <= now_ns) {
    // No more audio can come for this chunk, and its end time has passed: it is completed
    // with silence and goes out, whole (every chunk latency-time long, what num-buffers and
    // a VAD count), and not a chunk later with the silence after it. Not while its end is
    // still ahead: a long chunk (100 ms) would get silence where audio that is only late (a
    // 30 ms stall) still belongs, and re-anchor when that audio comes.
    const uint32_t room = ring_->slot_room();
    timeline_->pad(room);
    write_frames(nullptr, room, now_ns);
    add(counters_.frames_gap_filled, room);
  }
  const Timeline::IdleFill fill = timeline_->idle_fill(until, settings_.chunk_frames, start_ns_);
  if (fill.started) {
    discont_pending_ = true;
  }
  write_gap(fill.offset, fill.frames, timeline_->anchor_offset(), timeline_->anchor_time_ns(),
            now_ns);
  wake_consumer();
}

void CaptureEngine::finish(bool failed) {
  commit_open(last_arrival_ns_);  // the last partial chunk is captured audio too
  committed_unwoken_ = false;     // notify_all below wakes the reader
  {
    std::lock_guard<std::mutex> lock(mutex_);
    end_.store(failed ? End::kFailed : End::kEnded);
    cond_.notify_all();
  }
}

void CaptureEngine::on_target_exit() {
  if (end_.load() != End::kNone) {
    return;
  }
  PROCAUDIO_INFO(log_, "target exited: the stream ends after %llu frames",
                 static_cast<unsigned long long>(timeline_->next_offset()));
  finish(false);
}

void CaptureEngine::on_error(const CaptureError &error) {
  const End end = end_.load();
  if (end == End::kFailed) {
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = error;
  }
  if (end == End::kNone) {
    finish(true);  // an error after the end changes nothing the reader sees: it has ended
  }
}

void CaptureEngine::on_target_state(const TargetState &state) {
  PROCAUDIO_INFO(log_, "target %s: pid %u, %u stream(s)", target_phase_name(state.phase), state.pid,
                 state.streams);
  if (state.phase != TargetState::Phase::kCapturing) {
    detached_ = true;
  } else if (detached_) {
    detached_ = false;
    timeline_->reattach();
  }
  // From here on the stream is in this state: the audio the timeline has placed so far, up to
  // the drained end of an exited target, came before it. After a re-attach the frames between
  // this point and the new process's first packet are its silence, so they are "capturing".
  const uint64_t offset = timeline_->next_offset();
  std::lock_guard<std::mutex> lock(mutex_);
  if (target_states_.size() >= kMaxTargetStates) {
    target_states_.erase(target_states_.begin());
  }
  target_states_.push_back({offset, state});
}

std::vector<CaptureEngine::OffsetState> CaptureEngine::take_target_states(uint64_t before_offset) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto reached = target_states_.begin();
  while (reached != target_states_.end() && reached->offset < before_offset) {
    ++reached;
  }
  std::vector<OffsetState> states(target_states_.begin(), reached);
  target_states_.erase(target_states_.begin(), reached);
  return states;
}

void CaptureEngine::wake_consumer() {
  if (!committed_unwoken_) {
    return;
  }
  committed_unwoken_ = false;
  // Pairs with the fence in read(): either the consumer sees the new slot before it sleeps,
  // or this thread sees it waiting and wakes it.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (consumer_waiting_.load(kRelaxed)) {
    std::lock_guard<std::mutex> lock(mutex_);
    cond_.notify_one();
  }
}

// ---- Consumer ----

Chunk CaptureEngine::chunk_of(const ChunkHeader &header, uint64_t frames, uint64_t dropped) {
  Chunk chunk;
  chunk.offset = header.offset;
  chunk.frames = static_cast<uint32_t>(frames);
  chunk.discont = (header.flags & kChunkDiscont) != 0;
  chunk.gap = (header.flags & kChunkGap) != 0;
  chunk.anchor_offset = header.anchor_offset;
  chunk.anchor_time_ns = header.anchor_time_ns;
  chunk.ready_time_ns = header.ready_time_ns;
  chunk.dropped_frames = dropped;
  return chunk;
}

bool CaptureEngine::take_pending_gap(Chunk &chunk, void *dst) {
  if (pending_gap_.frames == 0) {
    return false;
  }
  const uint64_t frames = std::min<uint64_t>(pending_gap_.frames, settings_.chunk_frames);
  chunk = chunk_of(pending_gap_, frames, 0);
  std::memset(dst, 0, frames * settings_.format.bytes_per_frame());
  // What is left of the gap: it continues the piece just handed out.
  pending_gap_.offset += frames;
  pending_gap_.frames -= frames;
  pending_gap_.flags &= ~static_cast<uint32_t>(kChunkDiscont);
  return true;
}

bool CaptureEngine::chunk_ready() const {
  return pending_gap_.frames > 0 || ring_->readable();
}

CaptureEngine::ReadStatus CaptureEngine::read(Chunk &chunk, void *dst, uint64_t stream) {
  for (;;) {
    if (flushing_.load() || stream_.load() != stream) {
      return ReadStatus::kFlushing;
    }
    if (take_pending_gap(chunk, dst)) {
      break;
    }
    ChunkHeader header;
    uint64_t skipped = 0;
    if (ring_->read(header, dst, skipped) == FrameRing::ReadResult::kOk) {
      if (skipped > 0) {
        header.flags |= kChunkDiscont;
        add(counters_.frames_dropped, skipped);
        add(counters_.resyncs, 1);
        PROCAUDIO_DEBUG(log_, "overflow: %llu frames dropped before offset %llu",
                        static_cast<unsigned long long>(skipped),
                        static_cast<unsigned long long>(header.offset));
      }
      if ((header.flags & kChunkGap) != 0) {
        // A gap slot may be longer than a chunk: it goes out in chunk-sized pieces.
        pending_gap_ = header;
        take_pending_gap(chunk, dst);
        chunk.dropped_frames = skipped;
        break;
      }
      chunk = chunk_of(header, header.frames, skipped);
      break;
    }
    // Nothing readable. The producer commits before it flags the end, so a drained ring
    // seen after the flag is really drained.
    if (const End end = end_.load(); end != End::kNone) {
      if (!ring_->readable()) {
        return end == End::kEnded ? ReadStatus::kEnded : ReadStatus::kFailed;
      }
      continue;
    }
    std::unique_lock<std::mutex> lock(mutex_);
    consumer_waiting_.store(true, kRelaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    cond_.wait(lock, [this, stream] {
      return ring_->readable() || flushing_.load() || stream_.load() != stream ||
             end_.load() != End::kNone;
    });
    consumer_waiting_.store(false, kRelaxed);
  }
  if (chunk.discont) {
    add(counters_.discontinuities, 1);
  }
  return ReadStatus::kChunk;
}

void CaptureEngine::note_pushed(const Chunk &chunk, uint64_t push_time_ns) {
  add(counters_.chunks_pushed, 1);
  add(counters_.frames_pushed, chunk.frames);
  const uint64_t latency =
      push_time_ns > chunk.ready_time_ns ? push_time_ns - chunk.ready_time_ns : 0;
  counters_.latency_last_ns.store(latency, kRelaxed);
  counters_.arrival_last_ns.store(chunk.ready_time_ns, kRelaxed);
  if (latency > counters_.latency_max_ns.load(kRelaxed)) {
    counters_.latency_max_ns.store(latency, kRelaxed);
  }
  // The chunk's end time, as its stamps say, against the push: clause 7 as delivered.
  const uint64_t end =
      chunk.anchor_time_ns + scale_u64(chunk.offset + chunk.frames - chunk.anchor_offset,
                                       1'000'000'000, settings_.format.rate);
  if (push_time_ns > end) {
    const uint64_t lateness = push_time_ns - end;
    if (lateness > counters_.lateness_max_ns.load(kRelaxed)) {
      counters_.lateness_max_ns.store(lateness, kRelaxed);
    }
    if (lateness > chunk_ns_ + live_latency_ns()) {
      add(counters_.chunks_late, 1);
    }
  }
}

void CaptureEngine::set_flushing(bool flushing) {
  std::lock_guard<std::mutex> lock(mutex_);
  flushing_.store(flushing);
  cond_.notify_all();
}

CaptureError CaptureEngine::error() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return error_;
}

EngineStats CaptureEngine::stats() const {
  EngineStats s;
#define PROCAUDIO_STAT_READ(field, name) s.field = counters_.field.load(kRelaxed);
  PROCAUDIO_ENGINE_STATS(PROCAUDIO_STAT_READ)
#undef PROCAUDIO_STAT_READ
  return s;
}

}  // namespace procaudio
