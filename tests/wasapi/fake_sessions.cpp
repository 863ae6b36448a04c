// SPDX-License-Identifier: LGPL-2.1-or-later
#include "fake_sessions.h"

namespace procaudio {
namespace wasapi {
namespace testing {

CaptureError FakeSessionSource::start(Callback callback) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++starts_;
  if (start_error) {
    return start_error;
  }
  callback_ = std::move(callback);
  // Every session there is now, as the real watch lists them from the enumerator.
  for (const auto &entry : sessions_) {
    callback_(entry.second);
  }
  return {};
}

void FakeSessionSource::stop() {
  std::lock_guard<std::mutex> lock(mutex_);
  callback_ = nullptr;
}

void FakeSessionSource::report(const SessionEvent &event) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (event.state == SessionEvent::State::kExpired) {
    sessions_.erase(event.id);
  } else {
    sessions_[event.id] = event;
  }
  if (callback_) {
    callback_(event);
  }
}

void FakeSessionSource::play(const std::wstring &id, uint32_t pid) {
  report({id, pid, SessionEvent::State::kActive});
}

void FakeSessionSource::pause(const std::wstring &id) {
  uint32_t pid = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(id);
    if (it != sessions_.end()) {
      pid = it->second.pid;
    }
  }
  report({id, pid, SessionEvent::State::kInactive});
}

void FakeSessionSource::expire(const std::wstring &id) {
  uint32_t pid = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(id);
    if (it != sessions_.end()) {
      pid = it->second.pid;
    }
  }
  report({id, pid, SessionEvent::State::kExpired});
}

bool FakeSessionSource::started() {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<bool>(callback_);
}

int FakeSessionSource::starts() {
  std::lock_guard<std::mutex> lock(mutex_);
  return starts_;
}

}  // namespace testing
}  // namespace wasapi
}  // namespace procaudio
