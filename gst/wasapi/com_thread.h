// Running a piece of COM work on a short-lived thread of the multithreaded apartment, so that
// audio objects are created in the MTA whatever apartment the caller (an application's UI
// thread, say) is in. No GStreamer.
#pragma once

#include <functional>

#include "core/capture_error.h"

namespace procaudio {
namespace wasapi {

// Runs `work` on a new thread that has joined the MTA and waits for it; `work`'s error, or
// why the thread or COM could not be set up.
CaptureError run_on_mta_thread(const std::function<CaptureError()> &work);

}  // namespace wasapi
}  // namespace procaudio
