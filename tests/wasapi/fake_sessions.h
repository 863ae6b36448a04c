// SPDX-License-Identifier: LGPL-2.1-or-later
// A scripted AudioSessionSource: the test says which process starts and stops playing, as
// Windows' session manager would through its notifications. Callbacks run on the test's
// thread, inside play()/pause()/expire(), never concurrently, as the real ones come from one
// audio-service thread at a time.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "wasapi/sessions.h"

namespace procaudio {
namespace wasapi {
namespace testing {

class FakeSessionSource final : public AudioSessionSource {
 public:
  CaptureError start(Callback callback) override;
  void stop() override;

  // A session `id` of process `pid` plays (created or active again).
  void play(const std::wstring &id, uint32_t pid);
  void pause(const std::wstring &id);   // inactive: stopped playing, still there
  void expire(const std::wstring &id);  // gone

  CaptureError start_error;  // returned by start() when set, as wine's E_NOTIMPL
  bool started();
  int starts();

 private:
  void report(const SessionEvent &event);

  std::mutex mutex_;  // guards the fields below; held while a callback runs
  Callback callback_;
  std::map<std::wstring, SessionEvent> sessions_;
  int starts_ = 0;
};

}  // namespace testing
}  // namespace wasapi
}  // namespace procaudio
