// SPDX-License-Identifier: LGPL-2.1-or-later
// ProcessLoopbackActivator against a fake ActivateAudioInterfaceAsync (parameters, agile
// handler, completion on another thread, activate results, the timeout), and against the
// real one under wine (which has no process loopback: 0x80070002).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "com_fakes.h"
#include "test_support.h"
#include "wasapi/audio_client_activator.h"
#include "wasapi/process_loopback_params.h"

namespace procaudio {
namespace wasapi {
namespace {

using Microsoft::WRL::ComPtr;
using testing::FakeAudioClient;
using testing::FakeStream;

class FakeOperation final : public ComObject<IActivateAudioInterfaceAsyncOperation> {
 public:
  FakeOperation(HRESULT activate_hr, ComPtr<IUnknown> result)
      : activate_hr_(activate_hr), result_(std::move(result)) {}
  HRESULT STDMETHODCALLTYPE GetActivateResult(HRESULT *activate_hr, IUnknown **iface) override {
    *activate_hr = activate_hr_;
    *iface = nullptr;
    if (SUCCEEDED(activate_hr_) && result_) {
      result_.CopyTo(iface);
    }
    return S_OK;
  }

 private:
  HRESULT activate_hr_;
  ComPtr<IUnknown> result_;
};

// What the fake ActivateAudioInterfaceAsync saw, and how it answers.
struct FakeActivation {
  enum class Mode { kNever, kComplete, kFailSynchronously };
  Mode mode = Mode::kComplete;
  HRESULT sync_hr = S_OK;      // kFailSynchronously: returned by the call
  HRESULT activate_hr = S_OK;  // kComplete: the activate result
  ComPtr<IUnknown> result;     // kComplete: the interface handed back

  // Recorded.
  std::wstring device_path;
  IID riid = {};
  VARTYPE vt = VT_EMPTY;
  std::vector<uint8_t> blob;
  PROPVARIANT *params_seen = nullptr;    // the pointer the call was given
  bool params_on_callers_stack = false;  // inside the calling thread's stack?
  bool handler_is_agile = false;
  DWORD caller_thread = 0;
  DWORD completion_thread = 0;

  std::vector<std::thread> threads;
  std::vector<ComPtr<IActivateAudioInterfaceCompletionHandler>> pending;  // never completed

  ~FakeActivation() {
    for (std::thread &t : threads) {
      t.join();
    }
  }

  ActivateAudioInterfaceAsyncFn fn() {
    return [this](LPCWSTR path, REFIID iid, PROPVARIANT *params,
                  IActivateAudioInterfaceCompletionHandler *handler,
                  IActivateAudioInterfaceAsyncOperation **operation) -> HRESULT {
      device_path = path != nullptr ? path : L"";
      riid = iid;
      caller_thread = GetCurrentThreadId();
      params_seen = params;
      ULONG_PTR low = 0, high = 0;
      GetCurrentThreadStackLimits(&low, &high);
      const auto at = reinterpret_cast<ULONG_PTR>(params);
      const auto data = params != nullptr ? reinterpret_cast<ULONG_PTR>(params->blob.pBlobData) : 0;
      params_on_callers_stack = (at >= low && at < high) || (data >= low && data < high);
      if (params != nullptr) {
        vt = params->vt;
        if (params->vt == VT_BLOB && params->blob.pBlobData != nullptr) {
          blob.assign(params->blob.pBlobData, params->blob.pBlobData + params->blob.cbSize);
        }
      }
      ComPtr<IAgileObject> agile;
      handler_is_agile = SUCCEEDED(handler->QueryInterface(
          __uuidof(IAgileObject), reinterpret_cast<void **>(agile.GetAddressOf())));
      if (mode == Mode::kFailSynchronously) {
        *operation = nullptr;
        return sync_hr;
      }
      ComPtr<IActivateAudioInterfaceAsyncOperation> op =
          adopt<IActivateAudioInterfaceAsyncOperation>(new FakeOperation(activate_hr, result));
      op.CopyTo(operation);
      if (mode == Mode::kNever) {
        pending.emplace_back(handler);
        return S_OK;
      }
      // As the audio service: later, on another thread.
      ComPtr<IActivateAudioInterfaceCompletionHandler> h(handler);
      threads.emplace_back([this, h, op] {
        completion_thread = GetCurrentThreadId();
        h->ActivateCompleted(op.Get());
      });
      return S_OK;
    };
  }
};

LoopbackTarget include(uint32_t pid) {
  return {pid, true};
}

TEST(Activator, PassesProcessLoopbackParametersAndReturnsTheClient) {
  FakeActivation fake;
  auto stream = std::make_shared<FakeStream>();
  ComPtr<IAudioClient> fake_client = adopt<IAudioClient>(new FakeAudioClient(stream));
  fake_client.As(&fake.result);

  ProcessLoopbackActivator activator({}, 5000, fake.fn());
  ComPtr<IAudioClient> client;
  const CaptureError error = activator.activate(include(4242), client);
  ASSERT_FALSE(error) << error.message << " / " << error.detail;
  EXPECT_EQ(client.Get(), fake_client.Get());

  EXPECT_EQ(fake.device_path, L"VAD\\Process_Loopback");
  EXPECT_TRUE(fake.riid == __uuidof(IAudioClient));
  EXPECT_EQ(fake.vt, VT_BLOB);
  ASSERT_EQ(fake.blob.size(), 12u);
  const uint32_t *words = reinterpret_cast<const uint32_t *>(fake.blob.data());
  EXPECT_EQ(words[0], static_cast<uint32_t>(AUDIOCLIENT_ACTIVATION_TYPE_PROCESS_LOOPBACK));
  EXPECT_EQ(words[1], 4242u);
  EXPECT_EQ(words[2], static_cast<uint32_t>(PROCESS_LOOPBACK_MODE_INCLUDE_TARGET_PROCESS_TREE));
  EXPECT_TRUE(fake.handler_is_agile);
  // The activation ran on the activator's own MTA thread and completed on yet another.
  EXPECT_NE(fake.caller_thread, GetCurrentThreadId());
  EXPECT_NE(fake.completion_thread, fake.caller_thread);
}

TEST(Activator, ExcludeTreeMode) {
  FakeActivation fake;
  ComPtr<IAudioClient> fake_client =
      adopt<IAudioClient>(new FakeAudioClient(std::make_shared<FakeStream>()));
  fake_client.As(&fake.result);
  ProcessLoopbackActivator activator({}, 5000, fake.fn());
  ComPtr<IAudioClient> client;
  ASSERT_FALSE(activator.activate({77, false}, client));
  ASSERT_EQ(fake.blob.size(), 12u);
  const uint32_t *words = reinterpret_cast<const uint32_t *>(fake.blob.data());
  EXPECT_EQ(words[1], 77u);
  EXPECT_EQ(words[2], static_cast<uint32_t>(PROCESS_LOOPBACK_MODE_EXCLUDE_TARGET_PROCESS_TREE));
}

TEST(Activator, TimesOutWhenTheHandlerIsNeverCalled) {
  FakeActivation fake;
  fake.mode = FakeActivation::Mode::kNever;
  ProcessLoopbackActivator activator({}, 300, fake.fn());
  ComPtr<IAudioClient> client;
  const auto t0 = std::chrono::steady_clock::now();
  const CaptureError error = activator.activate(include(1234), client);
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(error.kind, ErrorKind::kTimeout);
  EXPECT_NE(error.message.find("did not answer"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("300 ms"), std::string::npos) << error.message;
  EXPECT_FALSE(client);
  EXPECT_GE(elapsed, std::chrono::milliseconds(290));
  EXPECT_LT(elapsed, std::chrono::milliseconds(5000));
  // A completion after the timeout finds a live handler and harms nobody.
  ASSERT_EQ(fake.pending.size(), 1u);
  ComPtr<IActivateAudioInterfaceAsyncOperation> late =
      adopt<IActivateAudioInterfaceAsyncOperation>(new FakeOperation(S_OK, nullptr));
  EXPECT_EQ(fake.pending[0]->ActivateCompleted(late.Get()), S_OK);
}

TEST(Activator, TheParametersOutliveAnActivationThatTimedOut) {
  // The audio service may read the parameters until it completes, which can be long after
  // the activating thread gave up: they belong to the (reference-counted) handler, not to
  // a stack frame.
  FakeActivation fake;
  fake.mode = FakeActivation::Mode::kNever;
  ProcessLoopbackActivator activator({}, 200, fake.fn());
  ComPtr<IAudioClient> client;
  EXPECT_EQ(activator.activate({4321, false}, client).kind, ErrorKind::kTimeout);
  // The activating thread has returned (and is gone); the operation still holds the handler.
  EXPECT_FALSE(fake.params_on_callers_stack);
  ASSERT_NE(fake.params_seen, nullptr);
  ASSERT_EQ(fake.params_seen->vt, VT_BLOB);
  ASSERT_EQ(fake.params_seen->blob.cbSize, 12u);
  const std::vector<uint8_t> now(fake.params_seen->blob.pBlobData,
                                 fake.params_seen->blob.pBlobData + 12);
  EXPECT_EQ(now, fake.blob);
  const uint32_t *words = reinterpret_cast<const uint32_t *>(now.data());
  EXPECT_EQ(words[1], 4321u);
  EXPECT_EQ(words[2], static_cast<uint32_t>(PROCESS_LOOPBACK_MODE_EXCLUDE_TARGET_PROCESS_TREE));
  // Once the handler goes, so do they.
  fake.pending.clear();
  fake.params_seen = nullptr;
}

TEST(Activator, FileNotFoundMeansProcessLoopbackUnavailable) {
  FakeActivation fake;
  fake.activate_hr = static_cast<HRESULT>(0x80070002u);
  ProcessLoopbackActivator activator({}, 5000, fake.fn());
  ComPtr<IAudioClient> client;
  const CaptureError error = activator.activate(include(1234), client);
  EXPECT_EQ(error.kind, ErrorKind::kBackendUnavailable);
  EXPECT_NE(error.message.find("process loopback unavailable"), std::string::npos) << error.message;
  EXPECT_NE(error.detail.find("0x80070002"), std::string::npos) << error.detail;
  EXPECT_NE(error.detail.find("ActivateAudioInterfaceAsync(VAD\\Process_Loopback) activation "
                              "failed: 0x80070002"),
            std::string::npos)
      << error.detail;
}

TEST(Activator, OtherActivateResults) {
  struct Case {
    HRESULT hr;
    ErrorKind kind;
  } cases[] = {
      {E_ACCESSDENIED, ErrorKind::kAccessDenied},
      {AUDCLNT_E_SERVICE_NOT_RUNNING, ErrorKind::kBackendUnavailable},
      {E_NOTIMPL, ErrorKind::kBackendUnavailable},
      {E_FAIL, ErrorKind::kFailed},
  };
  for (const Case &c : cases) {
    FakeActivation fake;
    fake.activate_hr = c.hr;
    ProcessLoopbackActivator activator({}, 5000, fake.fn());
    ComPtr<IAudioClient> client;
    const CaptureError error = activator.activate(include(1), client);
    EXPECT_EQ(error.kind, c.kind) << std::hex << c.hr;
    char hex[16];
    snprintf(hex, sizeof hex, "0x%08lX", static_cast<unsigned long>(c.hr));
    EXPECT_NE(error.detail.find(hex), std::string::npos) << error.detail;
  }
}

TEST(Activator, SynchronousFailure) {
  FakeActivation fake;
  fake.mode = FakeActivation::Mode::kFailSynchronously;
  fake.sync_hr = E_INVALIDARG;
  ProcessLoopbackActivator activator({}, 5000, fake.fn());
  ComPtr<IAudioClient> client;
  const CaptureError error = activator.activate(include(1), client);
  EXPECT_EQ(error.kind, ErrorKind::kFailed);
  EXPECT_NE(error.detail.find("0x80070057"), std::string::npos) << error.detail;
}

TEST(Activator, SuccessWithoutAnAudioClientIsAnError) {
  FakeActivation fake;  // S_OK, but no interface
  ProcessLoopbackActivator activator({}, 5000, fake.fn());
  ComPtr<IAudioClient> client;
  const CaptureError error = activator.activate(include(1), client);
  EXPECT_EQ(error.kind, ErrorKind::kFailed);
  EXPECT_FALSE(client);
}

TEST(Activator, RealActivateAudioInterfaceAsyncUnderWine) {
  if (!testing::running_under_wine()) {
    GTEST_SKIP() << "wine only: on Windows 10 2004+ this activation succeeds";
  }
  ProcessLoopbackActivator activator({}, 10000);
  ComPtr<IAudioClient> client;
  const CaptureError error = activator.activate(include(GetCurrentProcessId()), client);
  EXPECT_EQ(error.kind, ErrorKind::kBackendUnavailable) << error.message << " / " << error.detail;
  EXPECT_NE(error.message.find("process loopback unavailable"), std::string::npos) << error.message;
  EXPECT_NE(error.detail.find("0x80070002"), std::string::npos) << error.detail;
}

}  // namespace
}  // namespace wasapi
}  // namespace procaudio
