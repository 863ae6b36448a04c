// SPDX-License-Identifier: LGPL-2.1-or-later
// COM work on threads of the multithreaded apartment, whatever apartment the caller (an
// application's UI thread, say) is in: a piece of work run on a short-lived thread, and a
// worker thread that runs what is posted to it. No GStreamer.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "core/capture_error.h"

namespace procaudio {
namespace wasapi {

// Runs `work` on a new thread that has joined the MTA and waits for it; `work`'s error, or
// why the thread or COM could not be set up.
CaptureError run_on_mta_thread(const std::function<CaptureError()> &work);

// A thread in the MTA that runs the work posted to it, one piece at a time, in order. The
// audio service's callbacks must neither wait nor (un)register anything: they post what
// would, and return. Work still queued when the worker closes is dropped on the worker thread
// (so COM references it holds are released in the MTA), never run.
class MtaWorker {
 public:
  MtaWorker() = default;
  ~MtaWorker();
  MtaWorker(const MtaWorker &) = delete;
  MtaWorker &operator=(const MtaWorker &) = delete;

  // Starts the thread; returns once it has joined the MTA (or why it could not).
  CaptureError start();
  // Queues `work`; false (and `work` dropped here) when the worker is not running or closed.
  // Any thread.
  bool post(std::function<void()> work);
  // Runs `work` on the worker and waits for it; an error if it was dropped. Never from the
  // worker itself.
  CaptureError call(std::function<CaptureError()> work);
  // No more work taken from here on, queued work dropped once the piece running now returns.
  // Returns at once; any thread.
  void close();
  // close(), then waits for the thread to end. Never from the worker itself.
  void stop();

 private:
  void run();

  std::mutex mutex_;  // guards the fields below
  std::condition_variable changed_;
  std::deque<std::function<void()>> queue_;
  bool open_ = false;
  bool ready_ = false;  // start()'s handshake: the thread tried to join the MTA
  CaptureError start_error_;
  std::thread thread_;
};

}  // namespace wasapi
}  // namespace procaudio
