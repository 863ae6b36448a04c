// The WASAPI capture thread of one initialized process-loopback IAudioClient. No GStreamer.
//
// start() spawns a thread that joins the MTA, registers with MMCSS ("Pro Audio"), and on the
// first start Initialize()s the client (SHARED, LOOPBACK | EVENTCALLBACK, the requested
// format as WAVEFORMATEXTENSIBLE, a buffer of `buffer_ns`), gets its IAudioCaptureClient and
// sets the event handle; then Start()s it. It blocks in one WaitForMultipleObjects on
// {stop event, audio event, target process} with a timeout, and on each wake reads packets
// until GetNextPacketSize() gives 0:
//   SILENT             -> kPacketSilent
//   DATA_DISCONTINUITY -> kPacketDiscontinuity, except on the first packet after Start()
//                         (it always carries the flag; not a real glitch)
//   TIMESTAMP_ERROR    -> kPacketTimestampError (the timeline estimates the time)
//   device time        =  u64QPCPosition x 100 ns (u64DevicePosition may not advance here)
// Nothing for `idle_after_ns` -> sink.on_idle(now). The target's process handle signalled ->
// what is left is read, then sink.on_target_exit(). AUDCLNT_E_DEVICE_INVALIDATED ->
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
#include <string>
#include <thread>

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
  // Longest single wait: how often an idle stream is checked.
  uint32_t wake_interval_ms = 10;
  // No packet for this long: the sink is told the stream is idle (on_idle).
  uint64_t idle_after_ns = 30'000'000;
  // Longest start() waits for the thread to initialize and start the client.
  uint32_t startup_timeout_ms = 5000;
};

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
  // `client`: a process-loopback client, not yet initialized; this object initializes it.
  WasapiCapture(Microsoft::WRL::ComPtr<IAudioClient> client, const CaptureStreamSettings &settings,
                Logger log = {});
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

 private:
  void run(CaptureSink *sink, HANDLE target_process);
  CaptureError prepare();
  CaptureError read_packets(CaptureSink &sink, uint32_t &packets);
  uint64_t drain();
  void report_started(const CaptureError &error);

  Microsoft::WRL::ComPtr<IAudioClient> client_;
  Microsoft::WRL::ComPtr<IAudioCaptureClient> capture_client_;
  CaptureStreamSettings settings_;
  Logger log_;

  UniqueHandle audio_event_;  // auto-reset, signalled by the audio engine
  UniqueHandle stop_event_;   // manual-reset
  std::thread thread_;
  bool initialized_ = false;  // capture thread only (start() waits for it)
  bool first_packet_ = true;  // capture thread only
  std::atomic<bool> failed_{false};

  // The startup handshake.
  UniqueHandle started_event_;  // manual-reset
  CaptureError start_error_;    // written before started_event_ is set
};

}  // namespace wasapi
}  // namespace procaudio
