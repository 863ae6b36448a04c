// The WASAPI process-loopback capture backend (Windows 10 2004+). No GStreamer, and no
// Windows header here (the element includes this).
//
//   open()   OS version check (build 19041+), target resolved (process-name -> pid, the
//            oldest of several) and held open (SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION),
//            process-loopback client activated: include-tree / exclude-tree of the target,
//            with no target everything except this process's tree
//   start()  the capture thread (WasapiCapture): Initialize once, Start
//   stop()   IAudioClient::Stop (never Reset); a later start() Start()s the same client
//   close()  releases the client and the process
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "core/capture_backend.h"
#include "core/logger.h"

namespace procaudio {
namespace wasapi {

class AudioClientActivator;
struct WindowsVersion;

struct WasapiBackendOptions {
  // Hands out the process-loopback audio clients. Null: ProcessLoopbackActivator, i.e.
  // ActivateAudioInterfaceAsync. Tests inject fakes here.
  std::shared_ptr<AudioClientActivator> activator;
  // Reads the Windows version. Null: RtlGetVersion.
  std::function<bool(WindowsVersion &)> query_version;
  // How long the real activator waits for the audio service.
  uint32_t activation_timeout_ms = 5000;
  // The capture thread's longest wait (idle check cadence) and startup bound.
  uint32_t wake_interval_ms = 10;
  uint32_t startup_timeout_ms = 5000;
};

class WasapiBackend final : public CaptureBackend {
 public:
  // The formats that are safe to request from a process-loopback client.
  static FormatCaps supported_formats();
  // A packet's first frame is at most this old when it arrives (see idle_margin_ns()).
  static constexpr uint64_t kIdleMarginNs = 30'000'000;
  // The audio engine's period in this mode (GetDevicePeriod is E_NOTIMPL here): 10 ms.
  static constexpr uint64_t kDevicePeriodNs = 10'000'000;

  explicit WasapiBackend(Logger log = {}, WasapiBackendOptions options = {});
  ~WasapiBackend() override;
  WasapiBackend(const WasapiBackend &) = delete;
  WasapiBackend &operator=(const WasapiBackend &) = delete;

  FormatCaps formats() const override;
  CaptureError open(const TargetSpec &target) override;
  CaptureError start(const CaptureConfig &config, CaptureSink &sink) override;
  void stop() override;
  void close() override;
  uint64_t latency_ns() const override;
  uint64_t idle_margin_ns() const override;
  uint32_t resolved_pid() const override;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace wasapi
}  // namespace procaudio
