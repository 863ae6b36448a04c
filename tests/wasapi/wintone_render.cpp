// SPDX-License-Identifier: LGPL-2.1-or-later
// wintone.exe's WASAPI rendering: the default render endpoint, its mix format (IEEE float 32 or
// PCM 16, the same value in every channel), the event-driven render loop with its pause and its
// played-out end. The interface is wintone_render.h; the program (options, output lines, exit
// codes) is documented at the top of wintone.cpp.
#include "wintone_render.h"

#include <audioclient.h>
#include <mmdeviceapi.h>
#include <mmreg.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace wintone {
namespace {

constexpr REFERENCE_TIME kBufferDuration = 2'000'000;  // 200 ms, in 100 ns units
constexpr DWORD kEngineTimeoutMs = 2000;
constexpr double kPi = 3.14159265358979323846;

// KSDATAFORMAT_SUBTYPE_PCM / _IEEE_FLOAT, written out (no ksuser.lib).
const GUID kSubtypePcm = {
    0x00000001, 0x0000, 0x0010, {0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71}};
const GUID kSubtypeFloat = {
    0x00000003, 0x0000, 0x0010, {0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71}};

// ------------------------------------------------------------------------------ resources ---

template <typename T>
class ComPtr {
 public:
  ComPtr() = default;
  ComPtr(const ComPtr &) = delete;
  ComPtr &operator=(const ComPtr &) = delete;
  ~ComPtr() {
    if (p_ != nullptr) {
      p_->Release();
    }
  }
  T *get() const { return p_; }
  T *operator->() const { return p_; }
  T **put() { return &p_; }
  void **put_void() { return reinterpret_cast<void **>(&p_); }

 private:
  T *p_ = nullptr;
};

class CoTaskMemFormat {
 public:
  CoTaskMemFormat() = default;
  CoTaskMemFormat(const CoTaskMemFormat &) = delete;
  CoTaskMemFormat &operator=(const CoTaskMemFormat &) = delete;
  ~CoTaskMemFormat() { CoTaskMemFree(p_); }
  WAVEFORMATEX *get() const { return p_; }
  WAVEFORMATEX **put() { return &p_; }

 private:
  WAVEFORMATEX *p_ = nullptr;
};

class ComApartment {
 public:
  ComApartment() : hr_(CoInitializeEx(nullptr, COINIT_MULTITHREADED)) {}
  ComApartment(const ComApartment &) = delete;
  ComApartment &operator=(const ComApartment &) = delete;
  ~ComApartment() {
    if (SUCCEEDED(hr_)) {
      CoUninitialize();
    }
  }
  HRESULT result() const { return hr_; }

 private:
  HRESULT hr_;
};

// ------------------------------------------------------------------------------------ tone ---

enum class SampleKind { kFloat32, kPcm16 };

bool classify_format(const WAVEFORMATEX *wf, SampleKind *kind) {
  WORD tag = wf->wFormatTag;
  if (tag == WAVE_FORMAT_EXTENSIBLE) {
    if (wf->cbSize < sizeof(WAVEFORMATEXTENSIBLE) - sizeof(WAVEFORMATEX)) {
      return false;
    }
    const GUID &sub = reinterpret_cast<const WAVEFORMATEXTENSIBLE *>(wf)->SubFormat;
    if (IsEqualGUID(sub, kSubtypeFloat)) {
      tag = WAVE_FORMAT_IEEE_FLOAT;
    } else if (IsEqualGUID(sub, kSubtypePcm)) {
      tag = WAVE_FORMAT_PCM;
    } else {
      return false;
    }
  }
  if (wf->nChannels == 0 || wf->nSamplesPerSec == 0 ||
      wf->nBlockAlign != wf->nChannels * (wf->wBitsPerSample / 8)) {
    return false;
  }
  if (tag == WAVE_FORMAT_IEEE_FLOAT && wf->wBitsPerSample == 32) {
    *kind = SampleKind::kFloat32;
    return true;
  }
  if (tag == WAVE_FORMAT_PCM && wf->wBitsPerSample == 16) {
    *kind = SampleKind::kPcm16;
    return true;
  }
  return false;
}

// The sine, its phase carried across writes.
class Tone {
 public:
  Tone(SampleKind kind, unsigned channels, double rate, double freq, double level_db)
      : kind_(kind),
        channels_(channels),
        step_(2.0 * kPi * freq / rate),
        amplitude_(std::pow(10.0, level_db / 20.0)) {}

  void render(BYTE *data, UINT32 frames) {
    for (UINT32 f = 0; f < frames; ++f) {
      const double v = amplitude_ * std::sin(phase_);
      phase_ += step_;
      if (phase_ >= 2.0 * kPi) {
        phase_ -= 2.0 * kPi;
      }
      if (kind_ == SampleKind::kFloat32) {
        const float s = static_cast<float>(v);
        for (unsigned c = 0; c < channels_; ++c) {
          std::memcpy(data, &s, sizeof(s));
          data += sizeof(s);
        }
      } else {
        double scaled = std::floor(v * 32767.0 + 0.5);
        scaled = scaled > 32767.0 ? 32767.0 : (scaled < -32768.0 ? -32768.0 : scaled);
        const int16_t s = static_cast<int16_t>(scaled);
        for (unsigned c = 0; c < channels_; ++c) {
          std::memcpy(data, &s, sizeof(s));
          data += sizeof(s);
        }
      }
    }
  }

 private:
  SampleKind kind_;
  unsigned channels_;
  double step_;
  double amplitude_;
  double phase_ = 0.0;
};

// ------------------------------------------------------------------------------- frames ---

uint64_t ms_to_frames(uint64_t ms, uint64_t rate) {
  return (ms * rate + 500) / 1000;
}

// Rounded up.
uint64_t hns_to_frames(uint64_t hns, uint64_t rate) {
  return (hns * rate + 9'999'999) / 10'000'000;
}

}  // namespace

// ------------------------------------------------------------------ shared with wintone.cpp ---

uint64_t qpc_100ns() {
  LARGE_INTEGER counter;
  LARGE_INTEGER freq;
  QueryPerformanceCounter(&counter);
  QueryPerformanceFrequency(&freq);
  const uint64_t c = static_cast<uint64_t>(counter.QuadPart);
  const uint64_t f = static_cast<uint64_t>(freq.QuadPart);
  return c / f * 10'000'000ull + c % f * 10'000'000ull / f;
}

int fail(const char *call, HRESULT hr) {
  std::fprintf(stderr, "wintone: %s failed: 0x%08lx\n", call, static_cast<unsigned long>(hr));
  std::fflush(stderr);
  return kExitError;
}

int fail_win32(const char *call) {
  return fail(call, HRESULT_FROM_WIN32(GetLastError()));
}

// ---------------------------------------------------------------------------------- player ---

int play(const ToneOptions &o, HANDLE exit_event, const PlayOutput &out) {
  ComApartment com;
  if (FAILED(com.result())) {
    return fail("CoInitializeEx", com.result());
  }
  ComPtr<IMMDeviceEnumerator> enumerator;
  HRESULT hr = CoCreateInstance(__uuidof(MMDeviceEnumerator), nullptr, CLSCTX_ALL,
                                __uuidof(IMMDeviceEnumerator), enumerator.put_void());
  if (FAILED(hr)) {
    return fail("CoCreateInstance(MMDeviceEnumerator)", hr);
  }
  ComPtr<IMMDevice> device;
  hr = enumerator->GetDefaultAudioEndpoint(eRender, eConsole, device.put());
  if (FAILED(hr)) {
    return fail("IMMDeviceEnumerator::GetDefaultAudioEndpoint", hr);
  }
  ComPtr<IAudioClient> client;
  hr = device->Activate(__uuidof(IAudioClient), CLSCTX_ALL, nullptr, client.put_void());
  if (FAILED(hr)) {
    return fail("IMMDevice::Activate(IAudioClient)", hr);
  }
  CoTaskMemFormat mix;
  hr = client->GetMixFormat(mix.put());
  if (FAILED(hr)) {
    return fail("IAudioClient::GetMixFormat", hr);
  }
  const WAVEFORMATEX *wf = mix.get();
  SampleKind kind = SampleKind::kFloat32;
  if (!classify_format(wf, &kind)) {
    std::fprintf(stderr,
                 "wintone: unsupported mix format: tag=0x%04x bits=%u channels=%u rate=%lu "
                 "(only IEEE float 32 and PCM 16)\n",
                 static_cast<unsigned>(wf->wFormatTag), static_cast<unsigned>(wf->wBitsPerSample),
                 static_cast<unsigned>(wf->nChannels),
                 static_cast<unsigned long>(wf->nSamplesPerSec));
    std::fflush(stderr);
    return kExitError;
  }
  const uint64_t rate = wf->nSamplesPerSec;
  const unsigned channels = wf->nChannels;
  if (o.freq * 2.0 >= static_cast<double>(rate)) {
    std::fprintf(stderr, "wintone: --freq %g is not below half the mix rate %llu\n", o.freq,
                 static_cast<unsigned long long>(rate));
    std::fflush(stderr);
    return kExitError;
  }

  hr = client->Initialize(AUDCLNT_SHAREMODE_SHARED, AUDCLNT_STREAMFLAGS_EVENTCALLBACK,
                          kBufferDuration, 0, wf, nullptr);
  if (FAILED(hr)) {
    return fail("IAudioClient::Initialize", hr);
  }
  Handle audio_event(CreateEventW(nullptr, FALSE, FALSE, nullptr));
  if (audio_event.get() == nullptr) {
    return fail_win32("CreateEventW");
  }
  hr = client->SetEventHandle(audio_event.get());
  if (FAILED(hr)) {
    return fail("IAudioClient::SetEventHandle", hr);
  }
  UINT32 buffer_frames = 0;
  hr = client->GetBufferSize(&buffer_frames);
  if (FAILED(hr)) {
    return fail("IAudioClient::GetBufferSize", hr);
  }
  ComPtr<IAudioRenderClient> render;
  hr = client->GetService(__uuidof(IAudioRenderClient), render.put_void());
  if (FAILED(hr)) {
    return fail("IAudioClient::GetService(IAudioRenderClient)", hr);
  }
  // The session's volume is the user's per-application setting, remembered by Windows; the
  // tests measure the played level, so it is set to full and unmuted (only this session's).
  ComPtr<ISimpleAudioVolume> volume;
  hr = client->GetService(__uuidof(ISimpleAudioVolume), volume.put_void());
  if (FAILED(hr)) {
    return fail("IAudioClient::GetService(ISimpleAudioVolume)", hr);
  }
  if (FAILED(hr = volume->SetMasterVolume(1.0f, nullptr)) ||
      FAILED(hr = volume->SetMute(FALSE, nullptr))) {
    return fail("ISimpleAudioVolume::SetMasterVolume/SetMute", hr);
  }

  REFERENCE_TIME period = 0;
  hr = client->GetDevicePeriod(&period, nullptr);
  if (FAILED(hr)) {
    return fail("IAudioClient::GetDevicePeriod", hr);
  }
  REFERENCE_TIME latency = 0;
  hr = client->GetStreamLatency(&latency);
  if (FAILED(hr)) {
    return fail("IAudioClient::GetStreamLatency", hr);
  }

  // The tone runs up to a milestone: the pause (when one is pending), else the end. At a
  // milestone the buffer is played out before the Stop(), so that a listener hears exactly
  // that much tone before the silence: silent frames follow the tone (one device period before
  // the pause; a period and the stream latency at the end), and once the buffer is empty the
  // client is stopped (at the end, a period and the stream latency later still, with nothing
  // more written). Under wine this matters: pulse keeps back the last fraction of a period
  // until more data comes, and what it still holds when the stream goes is lost; without the
  // silence and the wait, the last milliseconds of tone would come after the pause, or never.
  Tone tone(kind, channels, static_cast<double>(rate), o.freq, o.level_db);
  const uint64_t total = ms_to_frames(o.duration_ms, rate);
  const uint64_t pause_at = o.has_pause ? ms_to_frames(o.pause_after_ms, rate) : total;
  const uint64_t period_100ns = period > 0 ? static_cast<uint64_t>(period) : 0;
  const uint64_t latency_100ns = latency > 0 ? static_cast<uint64_t>(latency) : 0;
  const uint64_t pause_tail_frames = hns_to_frames(period_100ns, rate);
  const uint64_t end_tail_frames = hns_to_frames(period_100ns + latency_100ns, rate);
  const uint64_t end_wait_100ns = period_100ns + latency_100ns;
  uint64_t drained_at = 0;  // at the end: when the buffer was found empty (qpc); 0: not yet
  bool pause_pending = o.has_pause && pause_at < total;
  uint64_t written = 0;          // tone frames
  uint64_t silence_written = 0;  // tail frames after the current milestone
  const char *failed_call = nullptr;

  // Fills what room the buffer has: tone up to the milestone, then the silent tail.
  // `*padding`: the padding found before writing; `*wrote`: the frames written.
  auto top_up = [&](UINT32 *padding, UINT32 *wrote) -> HRESULT {
    *wrote = 0;
    HRESULT r = client->GetCurrentPadding(padding);
    if (FAILED(r)) {
      failed_call = "IAudioClient::GetCurrentPadding";
      return r;
    }
    const uint64_t milestone = pause_pending ? pause_at : total;
    const bool silent = written >= milestone;
    const uint64_t room = *padding < buffer_frames ? buffer_frames - *padding : 0;
    const uint64_t tail_frames = pause_pending ? pause_tail_frames : end_tail_frames;
    const uint64_t left = silent ? tail_frames - silence_written : milestone - written;
    const UINT32 frames = static_cast<UINT32>(room < left ? room : left);
    if (frames == 0) {
      return S_OK;
    }
    BYTE *data = nullptr;
    r = render->GetBuffer(frames, &data);
    if (FAILED(r)) {
      failed_call = "IAudioRenderClient::GetBuffer";
      return r;
    }
    if (!silent) {
      tone.render(data, frames);
    }
    r = render->ReleaseBuffer(frames, silent ? AUDCLNT_BUFFERFLAGS_SILENT : 0);
    if (FAILED(r)) {
      failed_call = "IAudioRenderClient::ReleaseBuffer";
      return r;
    }
    if (silent) {
      silence_written += frames;
    } else {
      written += frames;
      out.frames_written->store(written);
    }
    *wrote = frames;
    return S_OK;
  };

  UINT32 padding = 0;
  UINT32 wrote = 0;
  hr = top_up(&padding, &wrote);  // pre-fill
  if (FAILED(hr)) {
    return fail(failed_call, hr);
  }
  uint64_t t = qpc_100ns();
  hr = client->Start();
  if (FAILED(hr)) {
    return fail("IAudioClient::Start", hr);
  }
  out.say("started pid=%lu role=%s rate=%llu channels=%u format=%s freq=%g qpc=%llu",
          static_cast<unsigned long>(GetCurrentProcessId()), o.role_child ? "child" : "main",
          static_cast<unsigned long long>(rate), channels,
          kind == SampleKind::kFloat32 ? "F32" : "S16", o.freq, static_cast<unsigned long long>(t));

  const HANDLE waits[2] = {exit_event, audio_event.get()};
  for (;;) {
    const DWORD w = WaitForMultipleObjects(2, waits, FALSE, kEngineTimeoutMs);
    if (w == WAIT_OBJECT_0) {
      client->Stop();
      return kExitOk;
    }
    if (w == WAIT_TIMEOUT) {
      client->Stop();
      std::fprintf(stderr,
                   "wintone: the audio engine stopped answering (no buffer event for %lu ms)\n",
                   static_cast<unsigned long>(kEngineTimeoutMs));
      std::fflush(stderr);
      return kExitEngine;
    }
    if (w != WAIT_OBJECT_0 + 1) {
      const int code = fail_win32("WaitForMultipleObjects");
      client->Stop();
      return code;
    }
    hr = top_up(&padding, &wrote);
    if (FAILED(hr)) {
      client->Stop();
      return fail(failed_call, hr);
    }
    const uint64_t milestone = pause_pending ? pause_at : total;
    const uint64_t tail_frames = pause_pending ? pause_tail_frames : end_tail_frames;
    if (wrote > 0 || written < milestone || silence_written < tail_frames || padding > 0) {
      continue;
    }
    if (!pause_pending) {
      const uint64_t now = qpc_100ns();
      if (drained_at == 0) {
        drained_at = now;
      }
      if (now - drained_at < end_wait_100ns) {
        continue;
      }
    }
    // Played out up to the milestone.
    silence_written = 0;
    if (!pause_pending) {
      break;
    }
    t = qpc_100ns();
    hr = client->Stop();
    if (FAILED(hr)) {
      return fail("IAudioClient::Stop", hr);
    }
    out.say("paused frames=%llu qpc=%llu", static_cast<unsigned long long>(written),
            static_cast<unsigned long long>(t));
    const DWORD pw = WaitForSingleObject(exit_event, static_cast<DWORD>(o.pause_ms));
    if (pw == WAIT_OBJECT_0) {
      return kExitOk;
    }
    if (pw != WAIT_TIMEOUT) {
      return fail_win32("WaitForSingleObject(--exit-event)");
    }
    pause_pending = false;
    hr = top_up(&padding, &wrote);  // pre-fill again
    if (FAILED(hr)) {
      return fail(failed_call, hr);
    }
    t = qpc_100ns();
    hr = client->Start();
    if (FAILED(hr)) {
      return fail("IAudioClient::Start", hr);
    }
    out.say("resumed qpc=%llu", static_cast<unsigned long long>(t));
  }
  hr = client->Stop();
  if (FAILED(hr)) {
    return fail("IAudioClient::Stop", hr);
  }
  return kExitOk;
}

}  // namespace wintone
