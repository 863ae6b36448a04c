// SPDX-License-Identifier: LGPL-2.1-or-later
// The WASAPI capture thread of one audio client. No GStreamer.
//
// start() spawns a thread that joins the MTA, registers with MMCSS ("Pro Audio"), and on the
// first start Initialize()s the client (SHARED, LOOPBACK | EVENTCALLBACK, the requested
// format as WAVEFORMATEXTENSIBLE, a buffer of `buffer_ns`), gets its IAudioCaptureClient and
// sets the event handle; then Start()s it.
//
// Initialize is first asked to convert (AUTOCONVERTPCM | SRC_DEFAULT_QUALITY: the audio engine
// resamples the mix to the requested format with its default-quality converter); if Windows
// rejects that (E_INVALIDARG, AUDCLNT_E_UNSUPPORTED_FORMAT, AUDCLNT_E_INVALID_STREAM_FLAG),
// once more without those flags, on a fresh client: implementations disagree on whether the
// process-loopback device takes them (GStreamer 1.28 and wasapi-rs pass them, NAudio says the
// device rejects them, OBS does not pass them). The log says which variant was accepted.
//
// It blocks in one WaitForMultipleObjects on {stop event, audio event, target process} with a
// timeout, and on each wake reads packets with GetBuffer until AUDCLNT_S_BUFFER_EMPTY (one call
// per packet; and the call that reports a lost device on every implementation: wine's
// GetNextPacketSize never fails):
//   SILENT             -> kPacketSilent
//   DATA_DISCONTINUITY -> only logged: no process-loopback implementation acts on it (GStreamer
//                         never reads it, OBS ignores it) and Windows sets it after Start and
//                         after idle stretches; the device times decide, in the timeline
//   TIMESTAMP_ERROR    -> kPacketTimestampError (the timeline estimates the time)
//   device time        =  u64QPCPosition x 100 ns (u64DevicePosition may not advance here)
// A wake without packets -> sink.on_idle(now), a tick; the wait ends at the sink's
// idle_deadline_ns() at the latest. The target's process handle signalled ->
// packets still in flight are read for `exit_drain_ns`, then sink.on_target_exit() (or the
// settings' on_target_exit). Target states queued with report_state() are delivered from
// this thread too.
// AUDCLNT_E_DEVICE_INVALIDATED, AUDCLNT_E_RESOURCES_INVALIDATED, RPC_E_DISCONNECTED and
// HRESULT_FROM_WIN32(RPC_S_SERVER_UNAVAILABLE) (the audio service restarted) ->
// on_error(kDeviceLost); any other failure -> on_error too: the thread never ends silently.
// stop() = IAudioClient::Stop(); a later start() drains what was left and Start()s again.
// Reset() is never called: after it, Start() succeeds but no data or events ever come.
#pragma once

#include <windows.h>
// (windows.h first)
#include <audioclient.h>
#include <mmreg.h>
#include <wrl/client.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "capture_counts.h"
#include "core/audio_format.h"
#include "core/capture_backend.h"
#include "core/logger.h"
#include "unique_handle.h"

namespace procaudio {
namespace wasapi {

struct CaptureStreamSettings {
  AudioFormat format;
  // The WASAPI buffer (Initialize's hnsBufferDuration), from the element's buffer-time.
  uint64_t buffer_ns = 200'000'000;
  // A loopback client (process loopback: AUDCLNT_STREAMFLAGS_LOOPBACK); false for the client
  // of a capture endpoint, which the tests use to run this loop against a real WASAPI.
  bool loopback = true;
  // Longest single wait (the sink's idle deadline may end it sooner).
  uint32_t wake_interval_ms = 10;
  // After the target process exited: how long packets still in flight are read.
  uint64_t exit_drain_ns = 30'000'000;
  // Longest start() waits for the thread to initialize and start the client.
  uint32_t startup_timeout_ms = 5000;
  // Called on the capture thread once the target exited and its audio in flight was read,
  // as the thread's last call; empty: sink.on_target_exit(). (A backend that follows the
  // application reports the exit and hands over instead.)
  std::function<void(CaptureSink &)> on_target_exit;
};

// Initialize()'s stream flags, in the order they are tried.
struct InitializeVariant {
  DWORD flags;
  const char *name;  // "LOOPBACK | EVENTCALLBACK | AUTOCONVERTPCM | SRC_DEFAULT_QUALITY"
};
constexpr int kInitializeVariants = 2;
InitializeVariant initialize_variant(bool loopback, int index);

// The format Initialize() is asked for: PCM or IEEE float, all bits valid, front
// centre (mono) or front left + right (stereo).
WAVEFORMATEXTENSIBLE make_wave_format(const AudioFormat &format);

// Initialize()'s hnsBufferDuration (100 ns units) for `buffer_ns`, kept within
// [20 ms, 2 s].
REFERENCE_TIME buffer_duration_for(uint64_t buffer_ns);

// "F32LE, 48000 Hz, 2 channels"
std::string describe_format(const AudioFormat &format);

// What to ask for instead of a format Windows or WasapiBackend::supported_formats() refuses.
constexpr const char *kSupportedFormatsAdvice =
    "; use 44100 or 48000 Hz, 1 or 2 channels, F32LE or S16LE.";

class WasapiCapture {
 public:
  // A fresh client, not initialized yet, for the Initialize retry.
  using Reactivate = std::function<CaptureError(Microsoft::WRL::ComPtr<IAudioClient> &)>;

  // `client`: not yet initialized; this object initializes it. `reactivate`: where a fresh one
  // comes from if Initialize has to be tried again; empty: no retry.
  WasapiCapture(Microsoft::WRL::ComPtr<IAudioClient> client, Reactivate reactivate,
                const CaptureStreamSettings &settings, Logger log = {});
  ~WasapiCapture();
  WasapiCapture(const WasapiCapture &) = delete;
  WasapiCapture &operator=(const WasapiCapture &) = delete;

  // Returns once the client runs (or failed to start: Initialize's kFormatRefused, ...).
  // `target_process`: a SYNCHRONIZE handle whose signal ends the capture, or null. Both
  // `sink` and the handle must outlive stop().
  CaptureError start(CaptureSink &sink, HANDLE target_process);

  // Returns once the thread has stopped the client and will not call the sink again.
  void stop();

  const CaptureStreamSettings &settings() const { return settings_; }

  // False once the stream failed (the device was invalidated, ...): the client is dead, a
  // new one must be activated.
  bool usable() const { return !failed_.load(); }

  // The Initialize variant Windows accepted (initialize_variant(...).name); null before.
  // Valid after start() returned.
  const char *accepted_variant() const { return accepted_variant_; }

  // What woke the thread since construction, and what it read then. Any thread.
  WakeCounts wake_counts() const;

  // Hands `state` to the sink from the capture thread (sink calls come from one thread):
  // at once if it runs, else first thing when it starts. Any thread.
  void report_state(const TargetState &state);

 private:
  void run(CaptureSink *sink, HANDLE target_process);
  CaptureError prepare();
  CaptureError initialize();
  CaptureError read_packets(CaptureSink &sink, uint32_t &packets);
  uint64_t drain();
  void report_started(const CaptureError &error);

  Microsoft::WRL::ComPtr<IAudioClient> client_;
  Microsoft::WRL::ComPtr<IAudioCaptureClient> capture_client_;
  Reactivate reactivate_;
  CaptureStreamSettings settings_;
  Logger log_;

  UniqueHandle audio_event_;  // auto-reset, signalled by the audio engine
  UniqueHandle stop_event_;   // manual-reset
  std::thread thread_;
  bool initialized_ = false;                // capture thread only (start() waits for it)
  const char *accepted_variant_ = nullptr;  // written before the startup handshake
  std::atomic<bool> failed_{false};

  // Target states waiting for the capture thread.
  std::mutex state_mutex_;
  std::vector<TargetState> pending_states_;  // guarded by state_mutex_
  UniqueHandle state_event_;                 // auto-reset: pending_states_ has news
  void deliver_states(CaptureSink &sink);

  std::atomic<uint64_t> event_wakes_{0};
  std::atomic<uint64_t> timeout_wakes_{0};
  std::atomic<uint64_t> packets_on_event_{0};
  std::atomic<uint64_t> packets_without_event_{0};

  // The startup handshake.
  UniqueHandle started_event_;  // manual-reset
  CaptureError start_error_;    // written before started_event_ is set
};

}  // namespace wasapi
}  // namespace procaudio
