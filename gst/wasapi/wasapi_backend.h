// SPDX-License-Identifier: LGPL-2.1-or-later
// The WASAPI process-loopback capture backend (Windows 10 2004+). No GStreamer, and no
// Windows header here (the element includes this).
//
//   open()   OS version check (build 19041+), target resolved (process-name -> pid, the
//            oldest of several) and held open (SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION),
//            process-loopback client activated: include-tree / exclude-tree of the target,
//            with no target (exclude-tree) everything except this process's tree; the
//            default render endpoint's mix rate read, as the rate to prefer; the audio
//            sessions watched for a named include-tree target. Following (on-target-exit=
//            wait): a name not running yet is not an error, the backend waits for it
//   start()  the capture thread (WasapiCapture): Initialize once, Start; the target's state
//            reported first; while waiting, TargetFollower's thread ticks and watches
//   stop()   IAudioClient::Stop (never Reset); a later start() Start()s the same client
//   close()  releases the client, the process and the session watch
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "capture_counts.h"
#include "core/capture_backend.h"
#include "core/logger.h"
#include "sessions.h"

namespace procaudio {
namespace wasapi {

class AudioClientActivator;
struct WindowsVersion;

// A packet's first frame is at most this old when it arrives (see idle_margin_ns()).
constexpr uint64_t kWasapiIdleMarginNs = 30'000'000;

struct WasapiBackendOptions {
  // Hands out the process-loopback audio clients. Null: ProcessLoopbackActivator, i.e.
  // ActivateAudioInterfaceAsync. Tests inject fakes here.
  std::shared_ptr<AudioClientActivator> activator;
  // Reads the Windows version. Null: RtlGetVersion.
  std::function<bool(WindowsVersion &)> query_version;
  // Reads the default render endpoint's mix rate. Null: default_render_mix_rate().
  std::function<CaptureError(uint32_t &)> query_mix_rate;
  // Reports the machine's audio sessions (the target's streams; the next process of the name
  // followed). Null: SessionWatch. Tests inject a script.
  std::shared_ptr<AudioSessionSource> sessions;
  // How long the real activator waits for the audio service.
  uint32_t activation_timeout_ms = 5000;
  // The capture thread's longest wait (idle check cadence) and startup bound.
  uint32_t wake_interval_ms = 10;
  uint32_t startup_timeout_ms = 5000;
  // How long packets still in flight are read after the target exited: the idle margin, the
  // most a packet may arrive after its capture time.
  uint64_t exit_drain_ns = kWasapiIdleMarginNs;
};

class WasapiBackend final : public CaptureBackend {
 public:
  // The formats that are safe to request from a process-loopback client.
  static FormatCaps supported_formats();
  // F32LE stereo at the endpoint's mix rate when it is one of supported_formats()' rates
  // (capturing at another rate makes the audio engine resample, reported to ring and to
  // crackle after a minute), else at 48000 Hz.
  static AudioFormat preferred_format_for(uint32_t mix_rate);
  static constexpr uint64_t kIdleMarginNs = kWasapiIdleMarginNs;
  // The audio engine's period in this mode (GetDevicePeriod is E_NOTIMPL here): 10 ms.
  static constexpr uint64_t kDevicePeriodNs = 10'000'000;

  explicit WasapiBackend(Logger log = {}, WasapiBackendOptions options = {});
  ~WasapiBackend() override;
  WasapiBackend(const WasapiBackend &) = delete;
  WasapiBackend &operator=(const WasapiBackend &) = delete;

  AudioFormat preferred_format() const override;
  CaptureError open(const TargetSpec &target) override;
  CaptureError start(const CaptureConfig &config, CaptureSink &sink) override;
  void stop() override;
  void close() override;
  uint64_t latency_ns() const override;
  uint64_t idle_margin_ns() const override;
  uint32_t resolved_pid() const override;

  // The Initialize stream flags Windows accepted for the capture started last
  // ("LOOPBACK | EVENTCALLBACK | AUTOCONVERTPCM | SRC_DEFAULT_QUALITY"), null before.
  const char *initialize_variant() const;
  // What woke that capture's thread, and what it read then.
  WakeCounts wake_counts() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace wasapi
}  // namespace procaudio
