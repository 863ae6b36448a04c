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
  PA_DEBUG(log_, "engine: %u Hz, %u ch, %u B/frame, chunk %u frames, ring %u slots (%llu frames)",
           settings_.format.rate, settings_.format.channels, settings_.format.bytes_per_frame(),
           settings_.chunk_frames, ring_->slot_count(),
           static_cast<unsigned long long>(ring_->capacity_frames()));
}

void CaptureEngine::begin(uint64_t start_ns) {
  ring_->reset();
  timeline_->reset();
  start_ns_ = start_ns;
  discont_pending_ = true;
  committed_unwoken_ = false;
  last_arrival_ns_ = start_ns;
  pending_gap_ = {};
  pending_gap_done_ = 0;
  detached_ = false;
  std::lock_guard<std::mutex> lock(mutex_);
  ended_.store(false);
  failed_.store(false);
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
  for (auto *c : {&counters_.packets, &counters_.frames_captured, &counters_.frames_silent,
                  &counters_.frames_gap_filled, &counters_.frames_dropped, &counters_.frames_pushed,
                  &counters_.discontinuities, &counters_.resyncs, &counters_.reattachments,
                  &counters_.chunks_pushed, &counters_.latency_last_ns, &counters_.latency_max_ns,
                  &counters_.arrival_last_ns}) {
    c->store(0, kRelaxed);
  }
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
  if (ended_.load(kRelaxed) || failed_.load(kRelaxed) || packet.frames == 0) {
    return;
  }
  last_arrival_ns_ = packet.arrival_time_ns;

  const Timeline::Placement placement =
      timeline_->place(packet.device_time_ns, packet.frames, packet.flags);
  write_gap(placement.fill_offset, placement.fill_frames, placement.fill_anchor_offset,
            placement.fill_anchor_time_ns, packet.arrival_time_ns);
  switch (placement.resync) {
    case Timeline::Resync::kNone:
      break;
    case Timeline::Resync::kStart:
      discont_pending_ = true;
      break;
    case Timeline::Resync::kReattach:
      PA_DEBUG(log_, "re-attached at offset %llu, device time %llu ns",
               static_cast<unsigned long long>(timeline_->anchor_offset()),
               static_cast<unsigned long long>(packet.device_time_ns));
      commit_open(packet.arrival_time_ns);  // the new process's audio starts a new slot
      discont_pending_ = true;
      add(counters_.reattachments, 1);
      break;
    case Timeline::Resync::kDeviceDiscontinuity:
    case Timeline::Resync::kDrift:
      PA_DEBUG(log_, "resync (%s) at offset %llu, device time %llu ns",
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
  if (ended_.load(kRelaxed) || failed_.load(kRelaxed)) {
    return;
  }
  const uint64_t until = now_ns > settings_.idle_margin_ns ? now_ns - settings_.idle_margin_ns : 0;
  if (until < start_ns_) {
    return;  // not even the start of the capture is safely behind us yet
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
    (failed ? failed_ : ended_).store(true);
    cond_.notify_all();
  }
}

void CaptureEngine::on_target_exit() {
  if (ended_.load() || failed_.load()) {
    return;
  }
  PA_INFO(log_, "target exited: the stream ends after %llu frames",
          static_cast<unsigned long long>(timeline_->next_offset()));
  finish(false);
}

void CaptureEngine::on_error(const CaptureError &error) {
  if (failed_.load()) {
    return;
  }
  PA_ERROR(log_, "capture failed: %s (%s)", error.message.c_str(), error.detail.c_str());
  {
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = error;
  }
  finish(true);
}

void CaptureEngine::on_target_state(const TargetState &state) {
  PA_INFO(log_, "target %s: pid %u, %u stream(s)", target_phase_name(state.phase), state.pid,
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

bool CaptureEngine::take_pending_gap(Chunk &chunk, void *dst) {
  if (pending_gap_done_ >= pending_gap_.frames) {
    return false;
  }
  const uint64_t frames =
      std::min<uint64_t>(pending_gap_.frames - pending_gap_done_, settings_.chunk_frames);
  chunk.offset = pending_gap_.offset + pending_gap_done_;
  chunk.frames = static_cast<uint32_t>(frames);
  chunk.gap = true;
  chunk.discont = pending_gap_done_ == 0 && pending_gap_discont_;
  chunk.dropped_frames = pending_gap_done_ == 0 ? pending_gap_dropped_ : 0;
  chunk.anchor_offset = pending_gap_.anchor_offset;
  chunk.anchor_time_ns = pending_gap_.anchor_time_ns;
  chunk.ready_time_ns = pending_gap_.ready_time_ns;
  std::memset(dst, 0, frames * settings_.format.bytes_per_frame());
  pending_gap_done_ += frames;
  return true;
}

bool CaptureEngine::chunk_ready() const {
  return pending_gap_done_ < pending_gap_.frames || ring_->readable();
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
      const bool discont = (header.flags & kChunkDiscont) != 0 || skipped > 0;
      if (skipped > 0) {
        add(counters_.frames_dropped, skipped);
        add(counters_.resyncs, 1);
        PA_DEBUG(log_, "overflow: %llu frames dropped before offset %llu",
                 static_cast<unsigned long long>(skipped),
                 static_cast<unsigned long long>(header.offset));
      }
      if ((header.flags & kChunkGap) != 0) {
        pending_gap_ = header;
        pending_gap_done_ = 0;
        pending_gap_discont_ = discont;
        pending_gap_dropped_ = skipped;
        continue;
      }
      chunk.offset = header.offset;
      chunk.frames = static_cast<uint32_t>(header.frames);
      chunk.gap = false;
      chunk.discont = discont;
      chunk.dropped_frames = skipped;
      chunk.anchor_offset = header.anchor_offset;
      chunk.anchor_time_ns = header.anchor_time_ns;
      chunk.ready_time_ns = header.ready_time_ns;
      break;
    }
    // Nothing readable. The producer commits before it flags the end, so a drained ring
    // seen after the flag is really drained.
    if (ended_.load()) {
      if (!ring_->readable()) {
        return ReadStatus::kEnded;
      }
      continue;
    }
    if (failed_.load()) {
      if (!ring_->readable()) {
        return ReadStatus::kFailed;
      }
      continue;
    }
    std::unique_lock<std::mutex> lock(mutex_);
    consumer_waiting_.store(true, kRelaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    cond_.wait(lock, [this, stream] {
      return ring_->readable() || flushing_.load() || stream_.load() != stream || ended_.load() ||
             failed_.load();
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
  s.packets = counters_.packets.load(kRelaxed);
  s.frames_captured = counters_.frames_captured.load(kRelaxed);
  s.frames_silent = counters_.frames_silent.load(kRelaxed);
  s.frames_gap_filled = counters_.frames_gap_filled.load(kRelaxed);
  s.frames_dropped = counters_.frames_dropped.load(kRelaxed);
  s.frames_pushed = counters_.frames_pushed.load(kRelaxed);
  s.discontinuities = counters_.discontinuities.load(kRelaxed);
  s.resyncs = counters_.resyncs.load(kRelaxed);
  s.reattachments = counters_.reattachments.load(kRelaxed);
  s.chunks_pushed = counters_.chunks_pushed.load(kRelaxed);
  s.latency_last_ns = counters_.latency_last_ns.load(kRelaxed);
  s.latency_max_ns = counters_.latency_max_ns.load(kRelaxed);
  s.arrival_last_ns = counters_.arrival_last_ns.load(kRelaxed);
  return s;
}

}  // namespace procaudio
