// SPDX-License-Identifier: LGPL-2.1-or-later
// HRESULT / Win32 error text, the activation parameter layout, the Initialize() format.
#include <gtest/gtest.h>

#include "wasapi/hresult.h"
#include "wasapi/process_loopback_params.h"
#include "wasapi/wasapi_capture.h"

namespace procaudio {
namespace wasapi {
namespace {

bool starts_with(const std::string &s, const std::string &prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

TEST(HResult, AudioClientCodeHasNameAndText) {
  const std::string text = format_hresult(static_cast<HRESULT>(0x88890004u));
  EXPECT_TRUE(starts_with(text, "0x88890004 (AUDCLNT_E_DEVICE_INVALIDATED: ")) << text;
  EXPECT_EQ(text.back(), ')') << text;
  // Either the system's text or the documented one: never just the name.
  EXPECT_GT(text.size(), std::string("0x88890004 (AUDCLNT_E_DEVICE_INVALIDATED: )").size());
}

TEST(HResult, Win32FacilityCodeHasSystemText) {
  const std::string text = format_hresult(static_cast<HRESULT>(0x80070002u));
  EXPECT_TRUE(starts_with(text, "0x80070002 (HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND): ")) << text;
  EXPECT_FALSE(hresult_text(static_cast<HRESULT>(0x80070002u)).empty());
  // No trailing newline or period from FormatMessage.
  EXPECT_EQ(text.find('\n'), std::string::npos) << text;
  EXPECT_EQ(text.find(".)"), std::string::npos) << text;
}

TEST(HResult, UnknownCodeSaysSo) {
  const std::string text = format_hresult(static_cast<HRESULT>(0xA0BC1234u));
  EXPECT_EQ(text, "0xA0BC1234 (no system text)");
  EXPECT_EQ(hresult_name(static_cast<HRESULT>(0xA0BC1234u)), nullptr);
}

TEST(HResult, Win32Error) {
  const std::string text = format_win32_error(ERROR_ACCESS_DENIED);
  EXPECT_TRUE(starts_with(text, "error 5 (ERROR_ACCESS_DENIED: ")) << text;
}

TEST(HResult, ErrorCarriesCallAndCode) {
  const CaptureError error = hresult_error(ErrorKind::kDeviceLost, "lost", "IAudioClient::Start",
                                           static_cast<HRESULT>(0x88890004u));
  EXPECT_EQ(error.kind, ErrorKind::kDeviceLost);
  EXPECT_EQ(error.message, "lost");
  EXPECT_TRUE(starts_with(error.detail, "IAudioClient::Start failed: 0x88890004 ("))
      << error.detail;
}

TEST(ActivationParams, LayoutIsTheSdks) {
  EXPECT_EQ(sizeof(AUDIOCLIENT_ACTIVATION_PARAMS), 12u);
  AUDIOCLIENT_ACTIVATION_PARAMS params = {};
  params.ActivationType = AUDIOCLIENT_ACTIVATION_TYPE_PROCESS_LOOPBACK;
  params.ProcessLoopbackParams.TargetProcessId = 0x11223344;
  params.ProcessLoopbackParams.ProcessLoopbackMode =
      PROCESS_LOOPBACK_MODE_EXCLUDE_TARGET_PROCESS_TREE;
  const uint32_t *words = reinterpret_cast<const uint32_t *>(&params);
  EXPECT_EQ(words[0], 1u);
  EXPECT_EQ(words[1], 0x11223344u);
  EXPECT_EQ(words[2], 1u);
  EXPECT_STREQ(VIRTUAL_AUDIO_DEVICE_PROCESS_LOOPBACK, L"VAD\\Process_Loopback");
}

TEST(WaveFormat, FloatStereo48k) {
  AudioFormat format{SampleFormat::kF32LE, 48000, 2};
  const WAVEFORMATEXTENSIBLE wf = make_wave_format(format);
  EXPECT_EQ(wf.Format.wFormatTag, WAVE_FORMAT_EXTENSIBLE);
  EXPECT_EQ(wf.Format.nChannels, 2);
  EXPECT_EQ(wf.Format.nSamplesPerSec, 48000u);
  EXPECT_EQ(wf.Format.wBitsPerSample, 32);
  EXPECT_EQ(wf.Format.nBlockAlign, 8);
  EXPECT_EQ(wf.Format.nAvgBytesPerSec, 384000u);
  EXPECT_EQ(wf.Format.cbSize, 22);
  EXPECT_EQ(wf.Samples.wValidBitsPerSample, 32);
  EXPECT_EQ(wf.dwChannelMask, static_cast<DWORD>(SPEAKER_FRONT_LEFT | SPEAKER_FRONT_RIGHT));
  EXPECT_EQ(wf.SubFormat.Data1, 3u);  // KSDATAFORMAT_SUBTYPE_IEEE_FLOAT
  EXPECT_EQ(wf.SubFormat.Data4[7], 0x71);
}

TEST(WaveFormat, PcmMono44k) {
  AudioFormat format{SampleFormat::kS16LE, 44100, 1};
  const WAVEFORMATEXTENSIBLE wf = make_wave_format(format);
  EXPECT_EQ(wf.Format.nChannels, 1);
  EXPECT_EQ(wf.Format.nSamplesPerSec, 44100u);
  EXPECT_EQ(wf.Format.wBitsPerSample, 16);
  EXPECT_EQ(wf.Format.nBlockAlign, 2);
  EXPECT_EQ(wf.Format.nAvgBytesPerSec, 88200u);
  EXPECT_EQ(wf.dwChannelMask, static_cast<DWORD>(SPEAKER_FRONT_CENTER));
  EXPECT_EQ(wf.SubFormat.Data1, 1u);  // KSDATAFORMAT_SUBTYPE_PCM
}

TEST(WaveFormat, BufferDurationFromBufferTimeWithinBounds) {
  EXPECT_EQ(buffer_duration_for(200'000'000), 2'000'000);         // 200 ms in 100 ns units
  EXPECT_EQ(buffer_duration_for(1'000'000), 200'000);             // at least 20 ms
  EXPECT_EQ(buffer_duration_for(60'000'000'000ull), 20'000'000);  // at most 2 s
}

}  // namespace
}  // namespace wasapi
}  // namespace procaudio
