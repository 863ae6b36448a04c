// SPDX-License-Identifier: LGPL-2.1-or-later
#include "com_thread.h"

#include <windows.h>
// (windows.h first)
#include <objbase.h>

#include <future>
#include <memory>
#include <string>
#include <system_error>

#include "hresult.h"

namespace procaudio {
namespace wasapi {

namespace {

CaptureError no_thread(const std::system_error &e) {
  return {ErrorKind::kFailed, "Could not start a thread for the audio service.",
          std::string("std::thread: ") + e.what()};
}

CaptureError no_com(HRESULT co) {
  return hresult_error(ErrorKind::kFailed, "Could not initialize COM for audio capture.",
                       "CoInitializeEx(COINIT_MULTITHREADED)", co);
}

}  // namespace

CaptureError run_on_mta_thread(const std::function<CaptureError()> &work) {
  CaptureError error;
  try {
    std::thread worker([&] {
      const HRESULT co = CoInitializeEx(nullptr, COINIT_MULTITHREADED);
      if (FAILED(co)) {
        error = no_com(co);
        return;
      }
      error = work();
      CoUninitialize();
    });
    worker.join();
  } catch (const std::system_error &e) {
    error = no_thread(e);
  }
  return error;
}

// ---- MtaWorker

MtaWorker::~MtaWorker() {
  stop();
}

CaptureError MtaWorker::start() {
  stop();
  std::unique_lock<std::mutex> lock(mutex_);
  open_ = true;
  ready_ = false;
  start_error_ = {};
  try {
    thread_ = std::thread(&MtaWorker::run, this);
  } catch (const std::system_error &e) {
    open_ = false;
    return no_thread(e);
  }
  changed_.wait(lock, [this] { return ready_; });
  if (start_error_) {
    lock.unlock();
    thread_.join();  // it ends right after saying why
    return start_error_;
  }
  return {};
}

bool MtaWorker::post(std::function<void()> work) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!open_) {
      return false;
    }
    queue_.push_back(std::move(work));
  }
  changed_.notify_all();
  return true;
}

CaptureError MtaWorker::call(std::function<CaptureError()> work) {
  // Shared with the queued piece: if it is dropped unrun, the promise breaks and get() says so.
  auto done = std::make_shared<std::promise<CaptureError>>();
  std::future<CaptureError> result = done->get_future();
  const bool queued = post([done, work = std::move(work)] { done->set_value(work()); });
  done.reset();
  if (queued) {
    try {
      return result.get();
    } catch (const std::future_error &) {
    }
  }
  return {ErrorKind::kFailed, "The audio service's worker thread has stopped.",
          "MtaWorker::call: the work was dropped unrun"};
}

void MtaWorker::close() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = false;
  }
  changed_.notify_all();
}

void MtaWorker::stop() {
  close();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void MtaWorker::run() {
  const HRESULT co = CoInitializeEx(nullptr, COINIT_MULTITHREADED);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ready_ = true;
    if (FAILED(co)) {
      start_error_ = no_com(co);
      open_ = false;
    }
  }
  changed_.notify_all();
  if (FAILED(co)) {
    return;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    // Woken by post() and close(): nothing to do is a wait, never a poll.
    changed_.wait(lock, [this] { return !open_ || !queue_.empty(); });
    if (!open_) {
      break;
    }
    std::function<void()> work = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    work();
    work = nullptr;  // what it holds is released before the next wait
    lock.lock();
  }
  std::deque<std::function<void()>> dropped;
  dropped.swap(queue_);
  lock.unlock();
  dropped.clear();  // here, in the MTA: the COM references queued are released
  CoUninitialize();
}

}  // namespace wasapi
}  // namespace procaudio
