// SPDX-License-Identifier: LGPL-2.1-or-later
#include "com_fakes.h"

namespace procaudio {
namespace wasapi {
namespace testing {

void FakeStream::signal_locked() {
  if (started_ && event_ != nullptr) {
    SetEvent(event_);
  }
}

void FakeStream::push(FakePacket packet, bool signal) {
  std::lock_guard<std::mutex> lock(mutex_);
  queue_.push_back(std::move(packet));
  if (signal) {
    signal_locked();
  }
}

void FakeStream::fail_with(HRESULT hr) {
  std::lock_guard<std::mutex> lock(mutex_);
  failure_ = hr;
  signal_locked();
}

FakeStream::Counters FakeStream::counters() {
  std::lock_guard<std::mutex> lock(mutex_);
  return counters_;
}

FakeStream::InitializeCall FakeStream::initialize_call() {
  std::lock_guard<std::mutex> lock(mutex_);
  return initialize_call_;
}

bool FakeStream::started() {
  std::lock_guard<std::mutex> lock(mutex_);
  return started_;
}

bool FakeStream::wait_drained(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return drained_.wait_for(lock, timeout, [this] { return queue_.empty() && !outstanding_; });
}

HANDLE FakeStream::event_handle() {
  std::lock_guard<std::mutex> lock(mutex_);
  return event_;
}

HRESULT FakeStream::on_initialize(AUDCLNT_SHAREMODE mode, DWORD flags, REFERENCE_TIME duration,
                                  REFERENCE_TIME periodicity, const WAVEFORMATEX *format,
                                  LPCGUID guid) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++counters_.initialize;
  initialize_call_.share_mode = mode;
  initialize_call_.flags = flags;
  initialize_call_.buffer_duration = duration;
  initialize_call_.periodicity = periodicity;
  initialize_call_.had_session_guid = guid != nullptr;
  if (format != nullptr) {
    const uint8_t *bytes = reinterpret_cast<const uint8_t *>(format);
    initialize_call_.format.assign(bytes, bytes + sizeof(WAVEFORMATEX) + format->cbSize);
  }
  if (initialized_) {
    return AUDCLNT_E_ALREADY_INITIALIZED;
  }
  if (FAILED(initialize_result)) {
    return initialize_result;
  }
  if ((flags & refuse_flags) != 0) {
    return refuse_flags_result;
  }
  initialized_ = true;
  return S_OK;
}

HRESULT FakeStream::on_start() {
  std::lock_guard<std::mutex> lock(mutex_);
  ++counters_.start;
  if (!initialized_) {
    return AUDCLNT_E_NOT_INITIALIZED;
  }
  if (event_ == nullptr) {
    return AUDCLNT_E_EVENTHANDLE_NOT_SET;
  }
  if (started_) {
    return AUDCLNT_E_NOT_STOPPED;
  }
  if (FAILED(start_result)) {
    return start_result;
  }
  started_ = true;
  if (!queue_.empty()) {
    signal_locked();
  }
  return S_OK;
}

HRESULT FakeStream::on_stop() {
  std::lock_guard<std::mutex> lock(mutex_);
  ++counters_.stop;
  const bool was_started = started_;
  started_ = false;
  return was_started ? S_OK : S_FALSE;
}

HRESULT FakeStream::on_reset() {
  std::lock_guard<std::mutex> lock(mutex_);
  ++counters_.reset;
  queue_.clear();
  return S_OK;
}

HRESULT FakeStream::on_set_event_handle(HANDLE event) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++counters_.set_event_handle;
  if (!initialized_) {
    return AUDCLNT_E_NOT_INITIALIZED;
  }
  event_ = event;
  return S_OK;
}

void FakeStream::on_get_service() {
  std::lock_guard<std::mutex> lock(mutex_);
  ++counters_.get_service;
}

HRESULT FakeStream::get_buffer(BYTE **data, UINT32 *frames, DWORD *flags, UINT64 *device_position,
                               UINT64 *qpc_position) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++counters_.get_buffer;
  if (FAILED(failure_)) {
    return failure_;
  }
  if (outstanding_) {
    return AUDCLNT_E_OUT_OF_ORDER;
  }
  if (queue_.empty()) {
    ++counters_.get_buffer_empty;
    *data = nullptr;
    *frames = 0;
    *flags = 0;
    return AUDCLNT_S_BUFFER_EMPTY;
  }
  FakePacket &p = queue_.front();
  *data = p.data.empty() ? nullptr : p.data.data();
  *frames = p.frames;
  *flags = p.flags;
  if (device_position != nullptr) {
    *device_position = p.device_position;
  }
  if (qpc_position != nullptr) {
    *qpc_position = p.qpc_position;
  }
  outstanding_ = true;
  return S_OK;
}

HRESULT FakeStream::release_buffer(UINT32 frames) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++counters_.release_buffer;
  if (!outstanding_ || queue_.empty() || queue_.front().frames != frames) {
    return AUDCLNT_E_INVALID_SIZE;
  }
  queue_.pop_front();
  outstanding_ = false;
  drained_.notify_all();
  return S_OK;
}

HRESULT FakeStream::next_packet_size(UINT32 *frames) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++counters_.next_packet_size;
  if (FAILED(failure_)) {
    return failure_;
  }
  *frames = queue_.empty() ? 0 : queue_.front().frames;
  return S_OK;
}

CaptureError FakeActivator::activate(const LoopbackTarget &target,
                                     Microsoft::WRL::ComPtr<IAudioClient> &client) {
  std::lock_guard<std::mutex> lock(mutex_);
  requests_.push_back(target);
  if (next_error) {
    CaptureError error = next_error;
    next_error = {};
    return error;
  }
  auto stream = std::make_shared<FakeStream>();
  if (configure) {
    configure(*stream);
  }
  streams_.push_back(stream);
  client = adopt<IAudioClient>(new FakeAudioClient(stream));
  return {};
}

std::vector<LoopbackTarget> FakeActivator::requests() {
  std::lock_guard<std::mutex> lock(mutex_);
  return requests_;
}

std::shared_ptr<FakeStream> FakeActivator::stream(size_t n) {
  std::lock_guard<std::mutex> lock(mutex_);
  return n < streams_.size() ? streams_[n] : nullptr;
}

size_t FakeActivator::activations() {
  std::lock_guard<std::mutex> lock(mutex_);
  return streams_.size();
}

}  // namespace testing
}  // namespace wasapi
}  // namespace procaudio
