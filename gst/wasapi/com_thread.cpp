#include "com_thread.h"

#include <windows.h>
// (windows.h first)
#include <objbase.h>

#include <string>
#include <system_error>
#include <thread>

#include "hresult.h"

namespace procaudio {
namespace wasapi {

CaptureError run_on_mta_thread(const std::function<CaptureError()> &work) {
  CaptureError error;
  try {
    std::thread worker([&] {
      const HRESULT co = CoInitializeEx(nullptr, COINIT_MULTITHREADED);
      if (FAILED(co)) {
        error = hresult_error(ErrorKind::kFailed, "Could not initialize COM for audio capture.",
                              "CoInitializeEx(COINIT_MULTITHREADED)", co);
        return;
      }
      error = work();
      CoUninitialize();
    });
    worker.join();
  } catch (const std::system_error &e) {
    error = {ErrorKind::kFailed, "Could not start a thread for the audio service.",
             std::string("std::thread: ") + e.what()};
  }
  return error;
}

}  // namespace wasapi
}  // namespace procaudio
