// SPDX-License-Identifier: LGPL-2.1-or-later
// The WASAPI sources built against sdk-standin/audioclientactivationparams.h, a copy of the
// Windows SDK's gating (everything declared only when NTDDI_VERSION >= NTDDI_WIN10_FE), in
// the state this executable was compiled for (PROCAUDIO_EXPECT_SDK_DECLARATIONS): the build
// succeeds, the right definitions are used, and the activation blob is the one the audio
// service reads.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "wasapi/audio_client_activator.h"
#include "wasapi/process_loopback_params.h"

#if !defined(PROCAUDIO_SDK_STANDIN_INCLUDED)
#error "the stand-in of <audioclientactivationparams.h> was not the header included"
#endif
#if PROCAUDIO_EXPECT_SDK_DECLARATIONS
#if defined(PROCAUDIO_OWN_PROCESS_LOOPBACK_PARAMS)
#error "the SDK header declared the parameters, yet procaudio's own definitions were used"
#endif
#elif !defined(PROCAUDIO_OWN_PROCESS_LOOPBACK_PARAMS)
#error "the SDK header declared nothing, yet procaudio's own definitions were not used"
#endif

namespace procaudio {
namespace wasapi {
namespace {

// What the audio service reads: type 1 (process loopback), the pid, the mode (1: exclude).
const std::vector<uint8_t> kExpected = {1, 0, 0, 0, 0x92, 0x10, 0, 0, 1, 0, 0, 0};

TEST(SdkGating, TheActivationBlobIsTheOneTheAudioServiceReads) {
  const AUDIOCLIENT_ACTIVATION_PARAMS params = activation_params_for({4242, false});
  std::vector<uint8_t> bytes(sizeof params);
  std::memcpy(bytes.data(), &params, sizeof params);
  EXPECT_EQ(bytes, kExpected);
  ::testing::Test::RecordProperty("declarations",
                                  PROCAUDIO_EXPECT_SDK_DECLARATIONS ? "the SDK's" : "procaudio's");
}

TEST(SdkGating, TheActivatorBuiltThisWayPassesThatBlob) {
  std::vector<uint8_t> seen;
  std::wstring device;
  auto fake = [&](LPCWSTR path, REFIID, PROPVARIANT *params,
                  IActivateAudioInterfaceCompletionHandler *,
                  IActivateAudioInterfaceAsyncOperation **operation) -> HRESULT {
    device = path != nullptr ? path : L"";
    if (params != nullptr && params->vt == VT_BLOB) {
      seen.assign(params->blob.pBlobData, params->blob.pBlobData + params->blob.cbSize);
    }
    *operation = nullptr;
    return E_FAIL;
  };
  ProcessLoopbackActivator activator({}, 1000, fake);
  Microsoft::WRL::ComPtr<IAudioClient> client;
  EXPECT_TRUE(activator.activate({4242, false}, client));  // the fake fails the call
  EXPECT_EQ(device, L"VAD\\Process_Loopback");
  EXPECT_EQ(seen, kExpected);
}

}  // namespace
}  // namespace wasapi
}  // namespace procaudio
