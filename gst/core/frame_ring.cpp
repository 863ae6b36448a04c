// SPDX-License-Identifier: LGPL-2.1-or-later
#include "frame_ring.h"

#include <algorithm>
#include <cstring>

namespace procaudio {

namespace {

constexpr uint32_t kWordBytes = sizeof(uint64_t);

// The common case: whole words, one relaxed store each, no read-modify-write.
void store_words(std::atomic<uint64_t> *words, const uint8_t *src, uint64_t count) {
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t value = 0;
    if (src != nullptr) {
      std::memcpy(&value, src + i * kWordBytes, kWordBytes);
    }
    words[i].store(value, std::memory_order_relaxed);
  }
}

// Samples live in relaxed atomic words: the consumer may read a slot while the producer
// overwrites it (it then discards the copy), and that race must be well-defined.
void store_bytes(std::atomic<uint64_t> *words, uint64_t byte_pos, const uint8_t *src,
                 uint64_t size) {
  while (size > 0) {
    if (byte_pos % kWordBytes == 0 && size >= kWordBytes) {
      const uint64_t whole = size / kWordBytes;
      store_words(words + byte_pos / kWordBytes, src, whole);
      byte_pos += whole * kWordBytes;
      size -= whole * kWordBytes;
      if (src != nullptr) {
        src += whole * kWordBytes;
      }
      continue;
    }
    const uint64_t word = byte_pos / kWordBytes;
    const uint32_t in_word = static_cast<uint32_t>(byte_pos % kWordBytes);
    const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(kWordBytes - in_word, size));
    // A part of a word (whole words took the branch above): keep the rest of it.
    uint64_t value = words[word].load(std::memory_order_relaxed);
    if (src != nullptr) {
      std::memcpy(reinterpret_cast<uint8_t *>(&value) + in_word, src, n);
      src += n;
    } else {
      std::memset(reinterpret_cast<uint8_t *>(&value) + in_word, 0, n);
    }
    words[word].store(value, std::memory_order_relaxed);
    byte_pos += n;
    size -= n;
  }
}

void load_bytes(const std::atomic<uint64_t> *words, uint8_t *dst, uint64_t size) {
  const uint64_t whole = size / kWordBytes;
  for (uint64_t i = 0; i < whole; ++i) {
    const uint64_t value = words[i].load(std::memory_order_relaxed);
    std::memcpy(dst + i * kWordBytes, &value, kWordBytes);
  }
  if (const uint64_t tail = size % kWordBytes) {
    const uint64_t value = words[whole].load(std::memory_order_relaxed);
    std::memcpy(dst + whole * kWordBytes, &value, tail);
  }
}

}  // namespace

struct FrameRing::Slot {
  // 2i+1 while slot index i is being written, 2i+2 once it is committed.
  std::atomic<uint64_t> sequence{0};
  std::atomic<uint64_t> offset{0};
  std::atomic<uint64_t> frames{0};
  std::atomic<uint32_t> flags{0};
  std::atomic<uint64_t> anchor_offset{0};
  std::atomic<uint64_t> anchor_time_ns{0};
  std::atomic<uint64_t> ready_time_ns{0};
};

FrameRing::FrameRing(uint32_t bytes_per_frame, uint32_t chunk_frames, uint64_t capacity_frames)
    : bytes_per_frame_(bytes_per_frame),
      chunk_frames_(std::max<uint32_t>(chunk_frames, 1)),
      // One slot more than the capacity: the producer's open slot is not readable.
      slot_count_(static_cast<uint32_t>(
          std::max<uint64_t>((capacity_frames + chunk_frames_ - 1) / chunk_frames_, 1) + 1)),
      slot_words_(static_cast<uint32_t>(
          (uint64_t{chunk_frames_} * bytes_per_frame + kWordBytes - 1) / kWordBytes)),
      slots_(new Slot[slot_count_]),
      words_(new std::atomic<uint64_t>[uint64_t{slot_count_} * slot_words_]) {
  reset();
}

FrameRing::~FrameRing() = default;

void FrameRing::reset() {
  for (uint32_t i = 0; i < slot_count_; ++i) {
    slots_[i].sequence.store(0, std::memory_order_relaxed);
  }
  write_index_.store(0, std::memory_order_release);
  open_ = false;
  open_header_ = {};
  open_bytes_ = 0;
  read_index_ = 0;
  expected_offset_ = 0;
}

FrameRing::Slot &FrameRing::slot(uint64_t index) const {
  return slots_[index % slot_count_];
}

void FrameRing::open_slot(const ChunkHeader &header) {
  const uint64_t index = write_index_.load(std::memory_order_relaxed);
  Slot &s = slot(index);
  s.sequence.store(2 * index + 1, std::memory_order_relaxed);
  // Orders the "being written" mark before every store into the slot (seqlock writer side).
  std::atomic_thread_fence(std::memory_order_release);
  open_ = true;
  open_header_ = header;
  if ((header.flags & kChunkGap) == 0) {
    open_header_.frames = 0;
  }
  open_bytes_ = 0;
}

uint32_t FrameRing::slot_room() const {
  if (!open_ || (open_header_.flags & kChunkGap) != 0) {
    return 0;
  }
  return chunk_frames_ - static_cast<uint32_t>(open_header_.frames);
}

void FrameRing::append(const void *data, uint32_t frames) {
  frames = std::min(frames, slot_room());
  const uint64_t index = write_index_.load(std::memory_order_relaxed);
  std::atomic<uint64_t> *words = &words_[(index % slot_count_) * slot_words_];
  const uint64_t size = uint64_t{frames} * bytes_per_frame_;
  store_bytes(words, open_bytes_, static_cast<const uint8_t *>(data), size);
  open_bytes_ += size;
  open_header_.frames += frames;
}

void FrameRing::commit(uint64_t ready_time_ns) {
  if (!open_) {
    return;
  }
  const uint64_t index = write_index_.load(std::memory_order_relaxed);
  Slot &s = slot(index);
  s.offset.store(open_header_.offset, std::memory_order_relaxed);
  s.frames.store(open_header_.frames, std::memory_order_relaxed);
  s.flags.store(open_header_.flags, std::memory_order_relaxed);
  s.anchor_offset.store(open_header_.anchor_offset, std::memory_order_relaxed);
  s.anchor_time_ns.store(open_header_.anchor_time_ns, std::memory_order_relaxed);
  s.ready_time_ns.store(ready_time_ns, std::memory_order_relaxed);
  s.sequence.store(2 * index + 2, std::memory_order_release);
  write_index_.store(index + 1, std::memory_order_release);
  open_ = false;
}

bool FrameRing::readable() const {
  return read_index_ < write_index_.load(std::memory_order_acquire);
}

FrameRing::ReadResult FrameRing::read(ChunkHeader &header, void *dst, uint64_t &skipped_frames) {
  skipped_frames = 0;
  for (;;) {
    const uint64_t written = write_index_.load(std::memory_order_acquire);
    if (read_index_ >= written) {
      return ReadResult::kEmpty;
    }
    // The producer's open slot (index `written`) has overwritten slot written - slot_count_.
    const uint64_t oldest_intact = written >= slot_count_ - 1 ? written - (slot_count_ - 1) : 0;
    read_index_ = std::max(read_index_, oldest_intact);

    Slot &s = slot(read_index_);
    const uint64_t sequence = s.sequence.load(std::memory_order_acquire);
    if (sequence != 2 * read_index_ + 2) {
      ++read_index_;  // overwritten since `written` was read: try the next one
      continue;
    }
    header.offset = s.offset.load(std::memory_order_relaxed);
    header.frames = s.frames.load(std::memory_order_relaxed);
    header.flags = s.flags.load(std::memory_order_relaxed);
    header.anchor_offset = s.anchor_offset.load(std::memory_order_relaxed);
    header.anchor_time_ns = s.anchor_time_ns.load(std::memory_order_relaxed);
    header.ready_time_ns = s.ready_time_ns.load(std::memory_order_relaxed);
    if ((header.flags & kChunkGap) == 0) {
      const uint64_t frames = std::min<uint64_t>(header.frames, chunk_frames_);
      load_bytes(&words_[(read_index_ % slot_count_) * slot_words_], static_cast<uint8_t *>(dst),
                 frames * bytes_per_frame_);
    }
    // Seqlock reader side: the copy is good only if the slot was not reopened meanwhile.
    std::atomic_thread_fence(std::memory_order_acquire);
    if (s.sequence.load(std::memory_order_relaxed) != sequence) {
      ++read_index_;
      continue;
    }
    ++read_index_;
    if (header.offset > expected_offset_) {
      skipped_frames = header.offset - expected_offset_;
    }
    expected_offset_ = header.offset + header.frames;
    return ReadResult::kOk;
  }
}

}  // namespace procaudio
