#include "wasapi_backend.h"

#include <windows.h>
// (windows.h first)
#include <objbase.h>

#include <algorithm>

#include "audio_client_activator.h"
#include "com_thread.h"
#include "endpoints.h"
#include "hresult.h"
#include "process_util.h"
#include "unique_handle.h"
#include "wasapi_capture.h"

using Microsoft::WRL::ComPtr;

namespace procaudio {
namespace wasapi {

struct WasapiBackend::Impl {
  Logger log;
  WasapiBackendOptions options;
  std::shared_ptr<AudioClientActivator> activator;

  bool opened = false;
  LoopbackTarget loopback;
  AudioFormat preferred;
  UniqueHandle process;  // the target, held from open() to close(); none without a target

  // Keeps the multithreaded apartment alive from open() to close(): the audio client is
  // created on one MTA thread and used on another.
  CO_MTA_USAGE_COOKIE mta_cookie = nullptr;

  ComPtr<IAudioClient> fresh_client;       // activated, not initialized yet
  std::unique_ptr<WasapiCapture> capture;  // owns the client it initialized

  CaptureError activate(ComPtr<IAudioClient> &client) {
    return activator->activate(loopback, client);
  }
};

AudioFormat WasapiBackend::preferred_format_for(uint32_t mix_rate) {
  AudioFormat format;  // F32LE, 48000 Hz, stereo
  const FormatCaps caps = supported_formats();
  if (std::find(caps.rates.begin(), caps.rates.end(), mix_rate) != caps.rates.end()) {
    format.rate = mix_rate;
  }
  return format;
}

FormatCaps WasapiBackend::supported_formats() {
  FormatCaps caps;
  caps.sample_formats = {SampleFormat::kF32LE, SampleFormat::kS16LE};
  caps.rates = {44100, 48000};
  caps.rate_min = 44100;
  caps.rate_max = 48000;
  caps.channels_min = 1;
  caps.channels_max = 2;
  return caps;
}

WasapiBackend::WasapiBackend(Logger log, WasapiBackendOptions options) : impl_(new Impl()) {
  impl_->log = std::move(log);
  impl_->options = std::move(options);
  impl_->activator = impl_->options.activator;
  if (!impl_->activator) {
    impl_->activator = std::make_shared<ProcessLoopbackActivator>(
        impl_->log, impl_->options.activation_timeout_ms);
  }
}

WasapiBackend::~WasapiBackend() {
  close();
}

FormatCaps WasapiBackend::formats() const {
  return supported_formats();
}

AudioFormat WasapiBackend::preferred_format() const {
  return impl_->preferred;
}

CaptureError WasapiBackend::open(const TargetSpec &target) {
  close();
  Impl &s = *impl_;
  if (CaptureError error = target.validate()) {
    return error;
  }

  WindowsVersion version;
  const bool have_version =
      s.options.query_version ? s.options.query_version(version) : query_windows_version(version);
  if (have_version) {
    PA_DEBUG(s.log, "Windows %u.%u.%u", version.major, version.minor, version.build);
    if (CaptureError error = check_process_loopback_supported(version)) {
      PA_ERROR(s.log, "%s (%s)", error.message.c_str(), error.detail.c_str());
      return error;
    }
  } else {
    PA_WARNING(s.log, "could not read the Windows version; trying process loopback anyway");
  }

  uint32_t pid = target.pid;
  if (pid == 0 && !target.process_name.empty()) {
    // Opened as it is looked up: the handle is the process the lookup named.
    if (CaptureError error = find_process_by_name(target.process_name, pid, s.process)) {
      PA_ERROR(s.log, "%s (%s)", error.message.c_str(), error.detail.c_str());
      return error;
    }
    PA_INFO(s.log, "process '%s' is pid %u", target.process_name.c_str(), pid);
  } else if (pid != 0) {
    if (CaptureError error = open_process(pid, s.process)) {
      PA_ERROR(s.log, "%s (%s)", error.message.c_str(), error.detail.c_str());
      return error;
    }
  }
  if (pid != 0) {
    s.loopback.pid = pid;
    s.loopback.include_tree = target.mode == TargetMode::kIncludeTree;
  } else {
    // No target: everything this system plays, except this process (and its children).
    s.loopback.pid = GetCurrentProcessId();
    s.loopback.include_tree = false;
  }

  const HRESULT mta = CoIncrementMTAUsage(&s.mta_cookie);
  if (FAILED(mta)) {
    s.mta_cookie = nullptr;
    PA_WARNING(s.log, "CoIncrementMTAUsage failed: %s", format_hresult(mta).c_str());
  }

  if (CaptureError error = s.activate(s.fresh_client)) {
    close();
    return error;
  }

  uint32_t mix_rate = 0;
  const CaptureError mix_error =
      s.options.query_mix_rate
          ? s.options.query_mix_rate(mix_rate)
          : run_on_mta_thread([&mix_rate] { return default_render_mix_rate(mix_rate); });
  if (mix_error) {
    PA_DEBUG(s.log, "default render mix rate unknown (%s: %s)", mix_error.message.c_str(),
             mix_error.detail.c_str());
    mix_rate = 0;
  }
  s.preferred = preferred_format_for(mix_rate);
  PA_DEBUG(s.log, "default render endpoint mixes at %u Hz: %u Hz preferred", mix_rate,
           s.preferred.rate);
  s.opened = true;
  return {};
}

CaptureError WasapiBackend::start(const CaptureConfig &config, CaptureSink &sink) {
  Impl &s = *impl_;
  stop();
  if (!s.opened) {
    return {ErrorKind::kFailed, "The capture was started before it was opened.",
            "WasapiBackend::start before open"};
  }
  if (!supported_formats().accepts(config.format)) {
    return {ErrorKind::kFormatRefused,
            "Process loopback cannot capture " + describe_format(config.format) +
                kSupportedFormatsAdvice,
            "WasapiBackend::start: format outside the declared caps"};
  }
  CaptureStreamSettings settings;
  settings.format = config.format;
  settings.buffer_ns = config.buffer_ns;
  settings.loopback = s.activator->loopback();
  settings.wake_interval_ms = s.options.wake_interval_ms;
  settings.idle_after_ns = kIdleMarginNs;
  settings.exit_drain_ns = s.options.exit_drain_ns;
  settings.startup_timeout_ms = s.options.startup_timeout_ms;

  // A client is initialized once, for one format; a new format (or a client that failed)
  // needs a fresh one.
  if (s.capture &&
      (s.capture->settings().format != settings.format ||
       s.capture->settings().buffer_ns != settings.buffer_ns || !s.capture->usable())) {
    PA_DEBUG(s.log, "a fresh audio client is needed");
    s.capture.reset();
  }
  if (!s.capture) {
    ComPtr<IAudioClient> client = std::move(s.fresh_client);
    if (!client) {
      if (CaptureError error = s.activate(client)) {
        return error;
      }
    }
    // Impl outlives the capture: the retry's fresh client comes from the same activator.
    s.capture.reset(new WasapiCapture(
        std::move(client), [&s](ComPtr<IAudioClient> &fresh) { return s.activate(fresh); },
        settings, s.log));
  }
  if (CaptureError error = s.capture->start(sink, s.process.valid() ? s.process.get() : nullptr)) {
    PA_ERROR(s.log, "%s (%s)", error.message.c_str(), error.detail.c_str());
    s.capture.reset();
    return error;
  }
  return {};
}

void WasapiBackend::stop() {
  if (impl_->capture) {
    impl_->capture->stop();
  }
}

void WasapiBackend::close() {
  Impl &s = *impl_;
  stop();
  s.capture.reset();
  s.fresh_client.Reset();
  s.process.reset();
  s.loopback = {};
  s.preferred = {};
  s.opened = false;
  if (s.mta_cookie != nullptr) {
    CoDecrementMTAUsage(s.mta_cookie);
    s.mta_cookie = nullptr;
  }
}

uint64_t WasapiBackend::latency_ns() const {
  return kDevicePeriodNs;
}

uint64_t WasapiBackend::idle_margin_ns() const {
  return kIdleMarginNs;
}

const char *WasapiBackend::initialize_variant() const {
  return impl_->capture ? impl_->capture->accepted_variant() : nullptr;
}

WakeCounts WasapiBackend::wake_counts() const {
  return impl_->capture ? impl_->capture->wake_counts() : WakeCounts{};
}

uint32_t WasapiBackend::resolved_pid() const {
  // Without a target, the loopback pid is this process, excluded: nothing was resolved.
  return impl_->process.valid() ? impl_->loopback.pid : 0;
}

}  // namespace wasapi
}  // namespace procaudio
