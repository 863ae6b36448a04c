// SPDX-License-Identifier: LGPL-2.1-or-later
#include "wasapi_backend.h"

#include <windows.h>
// (windows.h first)
#include <objbase.h>

#include <algorithm>
#include <atomic>
#include <mutex>

#include "audio_client_activator.h"
#include "com_thread.h"
#include "endpoints.h"
#include "hresult.h"
#include "process_util.h"
#include "target_follower.h"
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
  TargetSpec spec;
  AudioFormat preferred;
  // Keeps the multithreaded apartment alive from open() to close(): the audio client is
  // created on one MTA thread and used on another.
  CO_MTA_USAGE_COOKIE mta_cookie = nullptr;

  // The process captured now and its client. Written by the caller between captures and by
  // the follower's thread while it runs (never both: start() and stop() bracket that
  // thread); `mutex` guards the swaps of `capture` for readers on other threads.
  LoopbackTarget loopback;
  UniqueHandle process;                    // the target's, while attached
  std::atomic<uint32_t> attached_pid{0};   // the pid in `process`, for any thread
  ComPtr<IAudioClient> fresh_client;       // activated, not initialized yet
  std::unique_ptr<WasapiCapture> capture;  // owns the client it initialized
  mutable std::mutex mutex;

  // What start() was given: the follower's captures of a new process take the same.
  CaptureStreamSettings settings;
  CaptureSink *sink = nullptr;

  std::unique_ptr<TargetFollower> follower;

  CaptureError activate(ComPtr<IAudioClient> &client) {
    return activator->activate(loopback, client);
  }

  // Holds `pid` (checked alive, and the process a snapshot taken at `snapshot_time` listed)
  // as the target whose tree is captured.
  CaptureError hold_target(uint32_t pid, uint64_t snapshot_time) {
    uint64_t created = 0;
    if (CaptureError error = open_listed_process(pid, snapshot_time, process, created)) {
      return error;
    }
    loopback.pid = pid;
    loopback.include_tree = spec.mode == TargetMode::kIncludeTree;
    attached_pid = pid;
    return {};
  }

  void forget_target() {
    process.reset();
    loopback = {};
    attached_pid = 0;
  }

  // Starts a capture of the process held (a fresh client unless the last one fits), its
  // thread reporting `state` first.
  CaptureError start_capture(const TargetState &state) {
    std::unique_ptr<WasapiCapture> old;
    {
      std::lock_guard<std::mutex> lock(mutex);
      old = std::move(capture);
    }
    // A client is initialized once, for one format; a new format (or a client that failed)
    // needs a fresh one.
    if (old && (old->settings().format != settings.format ||
                old->settings().buffer_ns != settings.buffer_ns || !old->usable())) {
      PROCAUDIO_DEBUG(log, "a fresh audio client is needed");
      old.reset();
    }
    if (!old) {
      ComPtr<IAudioClient> client = std::move(fresh_client);
      if (!client) {
        if (CaptureError error = activate(client)) {
          return error;
        }
      }
      // Impl outlives the capture: the retry's fresh client comes from the same activator.
      old.reset(new WasapiCapture(
          std::move(client), [this](ComPtr<IAudioClient> &fresh) { return activate(fresh); },
          settings, log));
    }
    old->report_state(state);
    if (CaptureError error = old->start(*sink, process.valid() ? process.get() : nullptr)) {
      return error;
    }
    std::lock_guard<std::mutex> lock(mutex);
    capture = std::move(old);
    return {};
  }

  void drop_capture() {
    std::unique_ptr<WasapiCapture> old;
    {
      std::lock_guard<std::mutex> lock(mutex);
      old = std::move(capture);
    }
    if (old) {
      old->stop();
    }
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
  Impl &s = *impl_;
  TargetFollower::Hooks hooks;
  hooks.hold = [&s](uint32_t root, uint64_t snapshot_time) {
    return s.hold_target(root, snapshot_time);
  };
  hooks.attach = [&s](uint32_t, const TargetState &state) {
    if (CaptureError error = s.start_capture(state)) {
      s.forget_target();
      return error;
    }
    return CaptureError{};
  };
  hooks.detach = [&s] {
    s.drop_capture();
    s.forget_target();
  };
  hooks.report = [&s](const TargetState &state) {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.capture) {
      s.capture->report_state(state);
    }
  };
  s.follower.reset(new TargetFollower(s.log, std::move(hooks)));
}

WasapiBackend::~WasapiBackend() {
  close();
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
    PROCAUDIO_DEBUG(s.log, "Windows %u.%u.%u", version.major, version.minor, version.build);
    if (CaptureError error = check_process_loopback_supported(version)) {
      return error;
    }
  } else {
    PROCAUDIO_WARNING(s.log, "could not read the Windows version; trying process loopback anyway");
  }

  s.spec = target;
  uint32_t pid = target.pid;
  if (pid == 0 && !target.process_name.empty()) {
    // Opened as it is looked up: the handle is the process the lookup named.
    const CaptureError error = find_process_by_name(target.process_name, pid, s.process);
    if (error && !(error.kind == ErrorKind::kNotFound && target.follows())) {
      return error;
    }
    if (error) {
      PROCAUDIO_INFO(s.log, "process '%s' is not running: waiting for it",
                     target.process_name.c_str());
    } else {
      PROCAUDIO_INFO(s.log, "process '%s' is pid %u", target.process_name.c_str(), pid);
    }
  } else if (pid != 0) {
    if (CaptureError error = open_process(pid, s.process)) {
      return error;
    }
  }
  if (pid != 0) {
    s.loopback.pid = pid;
    s.loopback.include_tree = target.mode == TargetMode::kIncludeTree;
    s.attached_pid = pid;
  } else if (!target.has_target()) {
    // exclude-tree with no target: everything this system plays, except this process (and
    // its children).
    s.loopback.pid = GetCurrentProcessId();
    s.loopback.include_tree = false;
  }

  // The application's sessions: needed to follow it, useful to count its streams.
  if (target.follows() || (target.has_target() && target.mode == TargetMode::kIncludeTree)) {
    std::shared_ptr<AudioSessionSource> sessions = s.options.sessions;
    if (!sessions) {
      sessions = std::make_shared<SessionWatch>(s.log);
    }
    if (CaptureError error = s.follower->open(sessions, target.process_name, target.follows())) {
      close();
      return error;
    }
  }

  const HRESULT mta = CoIncrementMTAUsage(&s.mta_cookie);
  if (FAILED(mta)) {
    s.mta_cookie = nullptr;
    PROCAUDIO_WARNING(s.log, "CoIncrementMTAUsage failed: %s", format_hresult(mta).c_str());
  }

  if (s.loopback.pid != 0) {
    if (CaptureError error = s.activate(s.fresh_client)) {
      close();
      return error;
    }
  }

  uint32_t mix_rate = 0;
  const CaptureError mix_error =
      s.options.query_mix_rate
          ? s.options.query_mix_rate(mix_rate)
          : run_on_mta_thread([&mix_rate] { return default_render_mix_rate(mix_rate); });
  if (mix_error) {
    PROCAUDIO_DEBUG(s.log, "default render mix rate unknown (%s: %s)", mix_error.message.c_str(),
                    mix_error.detail.c_str());
    mix_rate = 0;
  }
  s.preferred = preferred_format_for(mix_rate);
  PROCAUDIO_DEBUG(s.log, "default render endpoint mixes at %u Hz: %u Hz preferred", mix_rate,
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
  s.sink = &sink;
  s.settings = {};
  s.settings.format = config.format;
  s.settings.buffer_ns = config.buffer_ns;
  s.settings.loopback = s.activator->loopback();
  s.settings.wake_interval_ms = s.options.wake_interval_ms;
  s.settings.exit_drain_ns = s.options.exit_drain_ns;
  s.settings.startup_timeout_ms = s.options.startup_timeout_ms;
  s.settings.on_target_exit = [&s](CaptureSink &sink) {
    s.follower->target_exited(sink, s.attached_pid);
  };

  // Before any capture thread runs: a hand-over left pending by the last run is settled now
  // (when following, its capture is detached and the follower waits), and one that the
  // capture started below reports is the follower's to take.
  s.follower->reset();
  const uint32_t root = s.attached_pid;
  const uint32_t streams = root != 0 ? s.follower->streams_of(root) : 0;
  if (s.loopback.pid != 0) {
    if (CaptureError error = s.start_capture({TargetState::Phase::kCapturing, root, streams})) {
      return error;
    }
  }
  s.follower->start(sink, root, streams, s.options.wake_interval_ms);
  return {};
}

void WasapiBackend::stop() {
  Impl &s = *impl_;
  s.follower->stop();  // first: it may be starting a capture
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.capture) {
    s.capture->stop();
  }
}

void WasapiBackend::close() {
  Impl &s = *impl_;
  stop();
  s.follower->close();
  s.drop_capture();
  s.fresh_client.Reset();
  s.forget_target();
  s.spec = {};
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
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->capture ? impl_->capture->accepted_variant() : nullptr;
}

WakeCounts WasapiBackend::wake_counts() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->capture ? impl_->capture->wake_counts() : WakeCounts{};
}

uint32_t WasapiBackend::resolved_pid() const {
  // Without a target, the loopback pid is this process, excluded: nothing was resolved.
  return impl_->attached_pid.load();
}

}  // namespace wasapi
}  // namespace procaudio
