// SPDX-License-Identifier: LGPL-2.1-or-later
// COM fakes of the process-loopback audio client, for the WASAPI backend tests under wine
// (wine has no process loopback). They behave like the real client as issue 4 records it:
// GetMixFormat, IsFormatSupported, GetDevicePeriod, GetCurrentPadding are E_NOTIMPL,
// GetBufferSize returns junk; packets are scripted by the test (push()), and the event
// handle the capture code set is signalled for them while the client is started.
#pragma once

#include <windows.h>
// (windows.h first)
#include <audioclient.h>
#include <mmdeviceapi.h>
#include <wrl/client.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "wasapi/audio_client_activator.h"
#include "wasapi/com_object.h"

namespace procaudio {
namespace wasapi {
namespace testing {

struct FakePacket {
  std::vector<uint8_t> data;  // frames x bytes per frame
  uint32_t frames = 0;
  DWORD flags = 0;               // AUDCLNT_BUFFERFLAGS_*
  uint64_t qpc_position = 0;     // 100 ns units
  uint64_t device_position = 0;  // frames; the real one may not advance: nobody should care
};

// What the capture code did to the fake client, and the packets it has still to read.
// Shared between the test thread and the capture thread.
class FakeStream {
 public:
  // Queues a packet; signals the event if the client is started and `signal`.
  void push(FakePacket packet, bool signal = true);
  // From now on GetNextPacketSize and GetBuffer fail with `hr`; signals the event.
  void fail_with(HRESULT hr);

  struct InitializeCall {
    AUDCLNT_SHAREMODE share_mode = AUDCLNT_SHAREMODE_EXCLUSIVE;
    DWORD flags = 0;
    REFERENCE_TIME buffer_duration = 0;
    REFERENCE_TIME periodicity = -1;
    std::vector<uint8_t> format;  // the WAVEFORMATEX(+extension) bytes
    bool had_session_guid = false;
  };
  struct Counters {
    int initialize = 0;
    int start = 0;
    int stop = 0;
    int reset = 0;
    int set_event_handle = 0;
    int get_service = 0;
    int get_buffer = 0;
    int get_buffer_empty = 0;  // GetBuffer with no packet queued
    int release_buffer = 0;
    int next_packet_size = 0;
  };
  Counters counters();
  InitializeCall initialize_call();
  bool started();
  // Waits until every pushed packet was read and released. The capture thread hands a packet
  // to the sink before it releases it, so a sink that saw the packet does not mean that.
  bool wait_drained(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  HANDLE event_handle();

  // Scripted results.
  HRESULT initialize_result = S_OK;
  HRESULT start_result = S_OK;
  // Initialize with any of these stream flags fails with refuse_flags_result.
  DWORD refuse_flags = 0;
  HRESULT refuse_flags_result = S_OK;

  // ---- called by the fakes ----
  HRESULT on_initialize(AUDCLNT_SHAREMODE mode, DWORD flags, REFERENCE_TIME duration,
                        REFERENCE_TIME periodicity, const WAVEFORMATEX *format, LPCGUID guid);
  HRESULT on_start();
  HRESULT on_stop();
  HRESULT on_reset();
  HRESULT on_set_event_handle(HANDLE event);
  void on_get_service();
  HRESULT get_buffer(BYTE **data, UINT32 *frames, DWORD *flags, UINT64 *device_position,
                     UINT64 *qpc_position);
  HRESULT release_buffer(UINT32 frames);
  HRESULT next_packet_size(UINT32 *frames);

 private:
  void signal_locked();

  std::mutex mutex_;
  std::condition_variable drained_;
  std::deque<FakePacket> queue_;
  bool outstanding_ = false;  // GetBuffer without ReleaseBuffer yet
  bool started_ = false;
  bool initialized_ = false;
  HANDLE event_ = nullptr;
  HRESULT failure_ = S_OK;
  Counters counters_;
  InitializeCall initialize_call_;
};

class FakeCaptureClient final : public ComObject<IAudioCaptureClient> {
 public:
  explicit FakeCaptureClient(std::shared_ptr<FakeStream> stream) : stream_(std::move(stream)) {}
  HRESULT STDMETHODCALLTYPE GetBuffer(BYTE **data, UINT32 *frames, DWORD *flags,
                                      UINT64 *device_position, UINT64 *qpc_position) override {
    return stream_->get_buffer(data, frames, flags, device_position, qpc_position);
  }
  HRESULT STDMETHODCALLTYPE ReleaseBuffer(UINT32 frames) override {
    return stream_->release_buffer(frames);
  }
  HRESULT STDMETHODCALLTYPE GetNextPacketSize(UINT32 *frames) override {
    return stream_->next_packet_size(frames);
  }

 private:
  std::shared_ptr<FakeStream> stream_;
};

class FakeAudioClient final : public ComObject<IAudioClient> {
 public:
  explicit FakeAudioClient(std::shared_ptr<FakeStream> stream) : stream_(std::move(stream)) {}

  HRESULT STDMETHODCALLTYPE Initialize(AUDCLNT_SHAREMODE mode, DWORD flags, REFERENCE_TIME duration,
                                       REFERENCE_TIME periodicity, const WAVEFORMATEX *format,
                                       LPCGUID guid) override {
    return stream_->on_initialize(mode, flags, duration, periodicity, format, guid);
  }
  HRESULT STDMETHODCALLTYPE GetBufferSize(UINT32 *frames) override {
    *frames = 0xDEADBEEF;  // junk, as the real process-loopback client
    return S_OK;
  }
  HRESULT STDMETHODCALLTYPE GetStreamLatency(REFERENCE_TIME *) override { return E_NOTIMPL; }
  HRESULT STDMETHODCALLTYPE GetCurrentPadding(UINT32 *) override { return E_NOTIMPL; }
  HRESULT STDMETHODCALLTYPE IsFormatSupported(AUDCLNT_SHAREMODE, const WAVEFORMATEX *,
                                              WAVEFORMATEX **) override {
    return E_NOTIMPL;
  }
  HRESULT STDMETHODCALLTYPE GetMixFormat(WAVEFORMATEX **) override { return E_NOTIMPL; }
  HRESULT STDMETHODCALLTYPE GetDevicePeriod(REFERENCE_TIME *, REFERENCE_TIME *) override {
    return E_NOTIMPL;
  }
  HRESULT STDMETHODCALLTYPE Start() override { return stream_->on_start(); }
  HRESULT STDMETHODCALLTYPE Stop() override { return stream_->on_stop(); }
  HRESULT STDMETHODCALLTYPE Reset() override { return stream_->on_reset(); }
  HRESULT STDMETHODCALLTYPE SetEventHandle(HANDLE event) override {
    return stream_->on_set_event_handle(event);
  }
  HRESULT STDMETHODCALLTYPE GetService(REFIID riid, void **object) override {
    stream_->on_get_service();
    if (object == nullptr) {
      return E_POINTER;
    }
    if (riid == __uuidof(IAudioCaptureClient)) {
      *object = static_cast<IAudioCaptureClient *>(new FakeCaptureClient(stream_));
      return S_OK;
    }
    *object = nullptr;
    return E_NOINTERFACE;
  }

 private:
  std::shared_ptr<FakeStream> stream_;
};

// Hands out a FakeAudioClient per activation (each on a fresh FakeStream), or a scripted
// error; records what was asked for.
class FakeActivator final : public AudioClientActivator {
 public:
  CaptureError activate(const LoopbackTarget &target,
                        Microsoft::WRL::ComPtr<IAudioClient> &client) override;

  CaptureError next_error;  // returned (once) instead of a client when set
  // Applied to each new client's stream before it is handed out (scripted results).
  std::function<void(FakeStream &)> configure;
  std::vector<LoopbackTarget> requests();
  // The stream of the n-th activated client (0-based).
  std::shared_ptr<FakeStream> stream(size_t n);
  size_t activations();

 private:
  std::mutex mutex_;
  std::vector<LoopbackTarget> requests_;
  std::vector<std::shared_ptr<FakeStream>> streams_;
};

}  // namespace testing
}  // namespace wasapi
}  // namespace procaudio
