// SPDX-License-Identifier: LGPL-2.1-or-later
#include "wasapi_capture.h"

#include <avrt.h>

#include <algorithm>
#include <system_error>

#include "core/monotonic_clock.h"
#include "hresult.h"

using Microsoft::WRL::ComPtr;

namespace procaudio {
namespace wasapi {

namespace {

// HRESULT_FROM_WIN32(RPC_S_SERVER_UNAVAILABLE), which is not a constant expression.
constexpr HRESULT kRpcServerUnavailable = static_cast<HRESULT>(0x800706BAu);

// KSDATAFORMAT_SUBTYPE_PCM and _IEEE_FLOAT (ksmedia.h), written out: no ksuser.lib, no
// INITGUID games, the same on every SDK.
constexpr GUID kSubtypePcm = {
    0x00000001, 0x0000, 0x0010, {0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71}};
constexpr GUID kSubtypeIeeeFloat = {
    0x00000003, 0x0000, 0x0010, {0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71}};

// A failure of the running stream (`call` failed with `hr`).
CaptureError stream_error(HRESULT hr, const char *call) {
  switch (hr) {
    case AUDCLNT_E_DEVICE_INVALIDATED:
    case AUDCLNT_E_RESOURCES_INVALIDATED:
      return hresult_error(ErrorKind::kDeviceLost,
                           "The captured audio stream was invalidated: the audio device was "
                           "removed or reconfigured, or the audio service restarted.",
                           call, hr);
    case RPC_E_DISCONNECTED:
    case kRpcServerUnavailable:
      return hresult_error(ErrorKind::kDeviceLost,
                           "The Windows audio service went away while capturing (it was "
                           "restarted or stopped).",
                           call, hr);
    case AUDCLNT_E_SERVICE_NOT_RUNNING:
      return hresult_error(ErrorKind::kDeviceLost,
                           "The Windows Audio service stopped while capturing.", call, hr);
    default:
      return hresult_error(ErrorKind::kFailed, "Reading the captured audio failed.", call, hr);
  }
}

// What Initialize answers when it does not take the stream flags or the format: the next
// variant is tried.
bool initialize_refused(HRESULT hr) {
  return hr == E_INVALIDARG || hr == AUDCLNT_E_UNSUPPORTED_FORMAT ||
         hr == AUDCLNT_E_INVALID_STREAM_FLAG;
}

}  // namespace

InitializeVariant initialize_variant(bool loopback, int index) {
  const DWORD convert =
      AUDCLNT_STREAMFLAGS_AUTOCONVERTPCM | AUDCLNT_STREAMFLAGS_SRC_DEFAULT_QUALITY;
  if (loopback) {
    const DWORD base = AUDCLNT_STREAMFLAGS_LOOPBACK | AUDCLNT_STREAMFLAGS_EVENTCALLBACK;
    return index == 0 ? InitializeVariant{base | convert,
                                          "LOOPBACK | EVENTCALLBACK | AUTOCONVERTPCM | "
                                          "SRC_DEFAULT_QUALITY"}
                      : InitializeVariant{base, "LOOPBACK | EVENTCALLBACK"};
  }
  const DWORD base = AUDCLNT_STREAMFLAGS_EVENTCALLBACK;
  return index == 0 ? InitializeVariant{base | convert,
                                        "EVENTCALLBACK | AUTOCONVERTPCM | SRC_DEFAULT_QUALITY"}
                    : InitializeVariant{base, "EVENTCALLBACK"};
}

WAVEFORMATEXTENSIBLE make_wave_format(const AudioFormat &format) {
  WAVEFORMATEXTENSIBLE wf = {};
  const WORD bits = static_cast<WORD>(bytes_per_sample(format.sample_format) * 8);
  wf.Format.wFormatTag = WAVE_FORMAT_EXTENSIBLE;
  wf.Format.nChannels = static_cast<WORD>(format.channels);
  wf.Format.nSamplesPerSec = format.rate;
  wf.Format.wBitsPerSample = bits;
  wf.Format.nBlockAlign = static_cast<WORD>(format.bytes_per_frame());
  wf.Format.nAvgBytesPerSec = format.rate * format.bytes_per_frame();
  wf.Format.cbSize = sizeof(WAVEFORMATEXTENSIBLE) - sizeof(WAVEFORMATEX);
  wf.Samples.wValidBitsPerSample = bits;
  wf.dwChannelMask =
      format.channels == 1 ? SPEAKER_FRONT_CENTER : (SPEAKER_FRONT_LEFT | SPEAKER_FRONT_RIGHT);
  wf.SubFormat = format.sample_format == SampleFormat::kF32LE ? kSubtypeIeeeFloat : kSubtypePcm;
  return wf;
}

REFERENCE_TIME buffer_duration_for(uint64_t buffer_ns) {
  const uint64_t hns = buffer_ns / 100;
  return static_cast<REFERENCE_TIME>(
      std::min<uint64_t>(std::max<uint64_t>(hns, 200'000), 20'000'000));
}

std::string describe_format(const AudioFormat &format) {
  return std::string(sample_format_name(format.sample_format)) + ", " +
         std::to_string(format.rate) + " Hz, " + std::to_string(format.channels) +
         (format.channels == 1 ? " channel" : " channels");
}

WasapiCapture::WasapiCapture(ComPtr<IAudioClient> client, Reactivate reactivate,
                             const CaptureStreamSettings &settings, Logger log)
    : client_(std::move(client)),
      reactivate_(std::move(reactivate)),
      settings_(settings),
      log_(std::move(log)),
      audio_event_(CreateEventW(nullptr, FALSE, FALSE, nullptr)),
      stop_event_(CreateEventW(nullptr, TRUE, FALSE, nullptr)),
      state_event_(CreateEventW(nullptr, FALSE, FALSE, nullptr)),
      started_event_(CreateEventW(nullptr, TRUE, FALSE, nullptr)) {}

WasapiCapture::~WasapiCapture() {
  stop();
}

CaptureError WasapiCapture::start(CaptureSink &sink, HANDLE target_process) {
  stop();
  if (!client_) {
    return {ErrorKind::kFailed, "No audio client to capture from.", "WasapiCapture::start"};
  }
  if (!audio_event_.valid() || !stop_event_.valid() || !started_event_.valid() ||
      !state_event_.valid()) {
    return win32_error(ErrorKind::kFailed, "Could not create the capture thread's events.",
                       "CreateEventW", GetLastError());
  }
  ResetEvent(stop_event_.get());
  ResetEvent(started_event_.get());
  start_error_ = {};
  try {
    thread_ = std::thread(&WasapiCapture::run, this, &sink, target_process);
  } catch (const std::system_error &e) {
    return {ErrorKind::kFailed, "Could not start the capture thread.",
            std::string("std::thread: ") + e.what()};
  }
  const DWORD wait = WaitForSingleObject(started_event_.get(), settings_.startup_timeout_ms);
  if (wait == WAIT_OBJECT_0) {
    if (start_error_) {
      thread_.join();  // it ends right after reporting
      return start_error_;
    }
    return {};
  }
  // The thread still starts up: let it find the stop event set.
  SetEvent(stop_event_.get());
  if (wait == WAIT_TIMEOUT) {
    return {ErrorKind::kTimeout,
            "The Windows audio service did not start the capture within " +
                std::to_string(settings_.startup_timeout_ms) + " ms.",
            "IAudioClient::Initialize/Start did not return within " +
                std::to_string(settings_.startup_timeout_ms) + " ms"};
  }
  return win32_error(ErrorKind::kFailed, "Waiting for the capture thread failed.",
                     "WaitForSingleObject(capture started)", GetLastError());
}

void WasapiCapture::stop() {
  if (thread_.joinable()) {
    SetEvent(stop_event_.get());
    thread_.join();
    PROCAUDIO_DEBUG(log_, "capture thread stopped");
  }
}

void WasapiCapture::report_started(const CaptureError &error) {
  start_error_ = error;
  SetEvent(started_event_.get());
}

CaptureError WasapiCapture::initialize() {
  const AudioFormat &format = settings_.format;
  const WAVEFORMATEXTENSIBLE wf = make_wave_format(format);
  const REFERENCE_TIME duration = buffer_duration_for(settings_.buffer_ns);
  std::string refusals;  // every variant refused, for the error's detail
  HRESULT hr = E_FAIL;
  for (int i = 0; i < kInitializeVariants; ++i) {
    const InitializeVariant variant = initialize_variant(settings_.loopback, i);
    if (i > 0) {
      // A client whose Initialize failed is not tried again: a fresh one.
      if (!reactivate_) {
        break;
      }
      if (CaptureError error = reactivate_(client_)) {
        return error;
      }
    }
    hr = client_->Initialize(AUDCLNT_SHAREMODE_SHARED, variant.flags, duration, 0,
                             reinterpret_cast<const WAVEFORMATEX *>(&wf), nullptr);
    if (SUCCEEDED(hr)) {
      accepted_variant_ = variant.name;
      PROCAUDIO_INFO(log_, "audio client initialized: %s, buffer %lld00 ns, flags %s",
                     describe_format(format).c_str(), static_cast<long long>(duration),
                     variant.name);
      break;
    }
    const std::string call = std::string("IAudioClient::Initialize(SHARED, ") + variant.name + ")";
    refusals += (refusals.empty() ? "" : "; ") + call + " failed: " + format_hresult(hr);
    if (!initialize_refused(hr)) {
      break;
    }
    PROCAUDIO_DEBUG(log_, "%s refused: %s", call.c_str(), format_hresult(hr).c_str());
  }
  if (FAILED(hr)) {
    if (initialize_refused(hr)) {
      return {ErrorKind::kFormatRefused,
              "Windows refused to capture in " + describe_format(format) + kSupportedFormatsAdvice,
              refusals};
    }
    if (hr == AUDCLNT_E_DEVICE_INVALIDATED || hr == AUDCLNT_E_SERVICE_NOT_RUNNING) {
      return {ErrorKind::kBackendUnavailable,
              "The Windows audio service could not set up the capture.", refusals};
    }
    return {ErrorKind::kFailed, "Setting up the capture (" + describe_format(format) + ") failed.",
            refusals};
  }
  hr = client_->GetService(__uuidof(IAudioCaptureClient),
                           reinterpret_cast<void **>(capture_client_.ReleaseAndGetAddressOf()));
  if (FAILED(hr)) {
    return hresult_error(ErrorKind::kFailed, "Setting up the capture failed.",
                         "IAudioClient::GetService(IAudioCaptureClient)", hr);
  }
  hr = client_->SetEventHandle(audio_event_.get());
  if (FAILED(hr)) {
    return hresult_error(ErrorKind::kFailed, "Setting up the capture failed.",
                         "IAudioClient::SetEventHandle", hr);
  }
  initialized_ = true;
  return {};
}

CaptureError WasapiCapture::prepare() {
  if (!initialized_) {
    if (CaptureError error = initialize()) {
      return error;
    }
  } else {
    // What arrived before the last Stop() and was not read: stale, and Reset() is not an
    // option (after it no data or events ever come).
    const uint64_t stale = drain();
    if (stale > 0) {
      PROCAUDIO_DEBUG(log_, "dropped %llu stale frames from before the pause",
                      static_cast<unsigned long long>(stale));
    }
  }
  const HRESULT hr = client_->Start();
  if (FAILED(hr)) {
    return stream_error(hr, "IAudioClient::Start");
  }
  return {};
}

uint64_t WasapiCapture::drain() {
  uint64_t frames_dropped = 0;
  for (int guard = 0; guard < 1000; ++guard) {
    BYTE *data = nullptr;
    UINT32 frames = 0;
    DWORD flags = 0;
    const HRESULT hr = capture_client_->GetBuffer(&data, &frames, &flags, nullptr, nullptr);
    if (FAILED(hr) || hr == AUDCLNT_S_BUFFER_EMPTY) {
      break;
    }
    capture_client_->ReleaseBuffer(frames);
    frames_dropped += frames;
  }
  return frames_dropped;
}

CaptureError WasapiCapture::read_packets(CaptureSink &sink, uint32_t &packets) {
  packets = 0;
  for (;;) {
    BYTE *data = nullptr;
    UINT32 frames = 0;
    DWORD flags = 0;
    UINT64 device_position = 0;
    UINT64 qpc_position = 0;
    HRESULT hr =
        capture_client_->GetBuffer(&data, &frames, &flags, &device_position, &qpc_position);
    if (FAILED(hr)) {
      return stream_error(hr, "IAudioCaptureClient::GetBuffer");
    }
    if (hr == AUDCLNT_S_BUFFER_EMPTY) {
      return {};
    }
    Packet packet;
    packet.data = data;
    packet.frames = frames;
    packet.arrival_time_ns = monotonic_now_ns();
    packet.device_time_ns = qpc_position * 100;
    if (flags & AUDCLNT_BUFFERFLAGS_SILENT) {
      packet.flags |= kPacketSilent;
    }
    if (flags & AUDCLNT_BUFFERFLAGS_DATA_DISCONTINUITY) {
      PROCAUDIO_DEBUG(log_, "data discontinuity flag at %llu ns (a hint: the device times decide)",
                      static_cast<unsigned long long>(packet.device_time_ns));
    }
    if ((flags & AUDCLNT_BUFFERFLAGS_TIMESTAMP_ERROR) || qpc_position == 0) {
      packet.flags |= kPacketTimestampError;
    }
    PROCAUDIO_TRACE(log_, "packet: %u frames, flags 0x%lx, qpc %llu, device position %llu", frames,
                    static_cast<unsigned long>(flags),
                    static_cast<unsigned long long>(qpc_position),
                    static_cast<unsigned long long>(device_position));
    if (frames > 0) {
      sink.on_packet(packet);
      ++packets;
    }
    hr = capture_client_->ReleaseBuffer(frames);
    if (FAILED(hr)) {
      return stream_error(hr, "IAudioCaptureClient::ReleaseBuffer");
    }
  }
}

void WasapiCapture::report_state(const TargetState &state) {
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    pending_states_.push_back(state);
  }
  SetEvent(state_event_.get());
}

void WasapiCapture::deliver_states(CaptureSink &sink) {
  // Reset first: a state reported after the swap below sets the event again.
  ResetEvent(state_event_.get());
  std::vector<TargetState> states;
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    states.swap(pending_states_);
  }
  for (const TargetState &state : states) {
    sink.on_target_state(state);
  }
}

WakeCounts WasapiCapture::wake_counts() const {
  WakeCounts counts;
  counts.audio_event = event_wakes_.load();
  counts.timeout = timeout_wakes_.load();
  counts.packets_on_event = packets_on_event_.load();
  counts.packets_without_event = packets_without_event_.load();
  return counts;
}

void WasapiCapture::run(CaptureSink *sink_ptr, HANDLE target_process) {
  CaptureSink &sink = *sink_ptr;
  const HRESULT co = CoInitializeEx(nullptr, COINIT_MULTITHREADED);
  if (FAILED(co)) {
    report_started(hresult_error(ErrorKind::kFailed,
                                 "Could not initialize COM on the capture thread.",
                                 "CoInitializeEx(COINIT_MULTITHREADED)", co));
    return;
  }
  DWORD task_index = 0;
  HANDLE mmcss = AvSetMmThreadCharacteristicsW(L"Pro Audio", &task_index);
  if (mmcss == nullptr) {
    // Not fatal (the stub under wine, a disabled MMCSS service): the thread runs at normal
    // priority, with a higher risk of glitches under load.
    PROCAUDIO_WARNING(log_, "MMCSS registration (\"Pro Audio\") failed: %s",
                      format_win32_error(GetLastError()).c_str());
  }

  const CaptureError error = prepare();
  report_started(error);
  if (!error) {
    PROCAUDIO_DEBUG(log_, "capture thread running%s",
                    target_process != nullptr ? ", watching the target process" : "");
    deliver_states(sink);  // what was reported before the thread ran
    // The target's handle last: it is dropped from the wait once it signalled.
    HANDLE handles[4] = {stop_event_.get(), audio_event_.get(), state_event_.get(), target_process};
    DWORD count = target_process != nullptr ? 4 : 3;
    // Set once the target exited: packets still in flight are read until then.
    uint64_t end_at_ns = 0;
    for (;;) {
      // Woken by the audio event, or at the sink's idle deadline at the latest (a target
      // that plays nothing sends no packets at all), or at the end of the exit drain.
      const uint64_t before = monotonic_now_ns();
      DWORD timeout_ms =
          timeout_ms_until(sink.idle_deadline_ns(), before, settings_.wake_interval_ms);
      if (end_at_ns != 0) {
        timeout_ms = std::min<DWORD>(
            timeout_ms, timeout_ms_until(end_at_ns, before, settings_.wake_interval_ms));
      }
      const DWORD wait = WaitForMultipleObjects(count, handles, FALSE, timeout_ms);
      if (wait == WAIT_OBJECT_0) {
        break;  // stop()
      }
      if (wait == WAIT_FAILED) {
        failed_ = true;
        sink.on_error(win32_error(ErrorKind::kFailed, "The capture thread could not wait.",
                                  "WaitForMultipleObjects", GetLastError()));
        break;
      }
      if (wait == WAIT_OBJECT_0 + 2) {
        deliver_states(sink);
      }
      const bool on_event = wait == WAIT_OBJECT_0 + 1;
      if (on_event) {
        event_wakes_.fetch_add(1, std::memory_order_relaxed);
      } else if (wait == WAIT_TIMEOUT) {
        timeout_wakes_.fetch_add(1, std::memory_order_relaxed);
      }
      // Read on the audio event and on a timeout too: cheap, and a packet whose event was
      // coalesced with an earlier one does not wait for the next.
      uint32_t packets = 0;
      if (CaptureError read_error = read_packets(sink, packets)) {
        failed_ = true;
        sink.on_error(read_error);
        break;
      }
      (on_event ? packets_on_event_ : packets_without_event_)
          .fetch_add(packets, std::memory_order_relaxed);
      const uint64_t now = monotonic_now_ns();  // after the last packet's arrival time
      if (wait == WAIT_OBJECT_0 + 3) {
        // The process is gone, but the audio engine still holds what it played last: read
        // on for the drain time, no longer waiting on the (signalled) handle.
        PROCAUDIO_INFO(log_,
                       "the target process exited: reading what is still in flight for %llu ms",
                       static_cast<unsigned long long>(settings_.exit_drain_ns / 1'000'000));
        end_at_ns = now + settings_.exit_drain_ns;
        count = 3;
      }
      if (end_at_ns != 0 && now >= end_at_ns) {
        PROCAUDIO_INFO(log_, "end of capture after the target's exit");
        deliver_states(sink);
        if (settings_.on_target_exit) {
          settings_.on_target_exit(sink);
        } else {
          sink.on_target_exit();
        }
        break;
      }
      if (packets == 0 && now >= sink.idle_deadline_ns()) {
        sink.on_idle(now);  // a tick: the sink decides whether silence is due
      }
    }
    const HRESULT hr = client_->Stop();
    if (FAILED(hr)) {
      PROCAUDIO_WARNING(log_, "IAudioClient::Stop failed: %s", format_hresult(hr).c_str());
    }
  }

  if (mmcss != nullptr) {
    AvRevertMmThreadCharacteristics(mmcss);
  }
  CoUninitialize();
}

}  // namespace wasapi
}  // namespace procaudio
