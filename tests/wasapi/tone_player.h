// SPDX-License-Identifier: LGPL-2.1-or-later
// wintone.exe (tests/wasapi/wintone.cpp) as a test drives it: a real process rendering a tone
// through shared-mode WASAPI, started with its options, its stdout lines ("started pid=...",
// "paused", "resumed", "exit frames=...") read on a thread and waited for, bounded; asked to
// exit through a named event. It runs in a kill-on-close job of its own, with nothing
// inherited but its stdout pipe and stderr: closing the job ends it and any copy it started,
// even when the test itself dies.
#pragma once

#include <windows.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "wasapi/unique_handle.h"

namespace procaudio {
namespace wasapi {
namespace testing {

class TonePlayer {
 public:
  struct Options {
    double freq = 440;
    double level_dbfs = -6;
    uint32_t duration_ms = 3000;
    uint32_t pause_after_ms = 0;  // with pause_ms: a pause of pause_ms after this much tone
    uint32_t pause_ms = 0;
    bool child = false;  // plays through a copy of itself it starts (a grandchild of the test)
    uint32_t lifetime_ms = 60000;
  };
  // One line it printed: the first word, and its key=value fields.
  struct Event {
    std::string word;
    std::map<std::string, std::string> fields;
    uint64_t at_ns = 0;  // when this process read it (monotonic)
    uint64_t number(const char *key) const;
  };

  TonePlayer() = default;
  ~TonePlayer();
  TonePlayer(const TonePlayer &) = delete;
  TonePlayer &operator=(const TonePlayer &) = delete;

  // `exe`: wintone.exe beside this test, or a copy of it (its path). False with `error`.
  bool start(const Options &options, std::string &error, const std::wstring &exe = {});
  // Waits for the n-th line starting with `word` (0-based), bounded; false on timeout or if
  // the player ended first.
  bool wait_event(const std::string &word, Event &event,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(10000),
                  size_t n = 0);
  std::vector<Event> events();
  // Asks it to stop early (its --exit-event); returns at once.
  void request_exit();
  // Its exit code, or -1 if it has not exited within the timeout.
  int wait_exit(uint32_t timeout_ms);

  uint32_t pid() const { return pid_; }
  HANDLE handle() const { return process_.get(); }
  // wintone.exe beside this test executable.
  static std::wstring default_exe();

 private:
  void read_lines();

  UniqueHandle job_;  // kill on close: the player and what it started
  UniqueHandle process_;
  UniqueHandle exit_event_;
  UniqueHandle stdout_read_;
  uint32_t pid_ = 0;
  std::thread reader_;
  std::mutex mutex_;
  std::condition_variable cond_;
  std::vector<Event> events_;
  bool ended_ = false;  // its stdout closed
};

// A copy of wintone.exe under a name no other process has (in %TEMP%), deleted with this
// object; declare it before the TonePlayer that runs it.
class TonePlayerCopy {
 public:
  TonePlayerCopy();
  ~TonePlayerCopy();
  TonePlayerCopy(const TonePlayerCopy &) = delete;
  TonePlayerCopy &operator=(const TonePlayerCopy &) = delete;
  const std::wstring &path() const { return path_; }  // empty if the copy failed
  std::string name() const;                           // "procaudio-tone-123-1.exe"

 private:
  std::wstring path_;
};

}  // namespace testing
}  // namespace wasapi
}  // namespace procaudio
