// SPDX-License-Identifier: LGPL-2.1-or-later
// wintone.exe's rendering half: the tone through shared-mode, event-driven WASAPI on the default
// render endpoint. wintone.cpp (its header comment documents the program: options, output
// lines, exit codes) parses the command line, runs --child and the lifetime watchdog, and
// calls play(). What both halves use is here; everything else stays inside its own file.
#pragma once

#include <windows.h>

#include <atomic>
#include <cstdint>

namespace wintone {

// The exit codes of wintone.exe.
constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitLifetime = 3;
constexpr int kExitEngine = 4;

// What play() takes from the command line, already checked (ranges, pause < duration).
struct ToneOptions {
  double freq = 440.0;
  double level_db = -6.0;
  uint64_t duration_ms = 3000;
  bool has_pause = false;  // --pause-after-ms / --pause-ms given
  uint64_t pause_after_ms = 0;
  uint64_t pause_ms = 0;
  bool role_child = false;  // `role=child` in the `started` line
};

// stdout belongs to wintone.cpp, which shares it with the lifetime watchdog (a line is never
// printed after the watchdog ended the process); play() reports through it.
struct PlayOutput {
  // Prints one `key=value` line (without the newline) on stdout, flushed at once.
  void (*say)(const char *fmt, ...);
  // Tone frames handed to WASAPI so far: the `frames=` of the `exit` line, which the watchdog
  // may print from its own thread while play() runs.
  std::atomic<uint64_t> *frames_written;
};

// Plays the tone until it has been played out, `exit_event` is set or a call fails; returns
// the exit code (kExitOk, kExitError, kExitEngine), the reason of a failure on stderr. Runs
// in the calling thread, in a multithreaded COM apartment of its own.
int play(const ToneOptions &o, HANDLE exit_event, const PlayOutput &out);

// QueryPerformanceCounter in 100 ns units: the `qpc=` of the output lines.
uint64_t qpc_100ns();

// Print `wintone: CALL failed: 0xHRESULT` on stderr and return kExitError; fail_win32 takes
// GetLastError().
int fail(const char *call, HRESULT hr);
int fail_win32(const char *call);

// An owned kernel handle (null and INVALID_HANDLE_VALUE are not closed).
class Handle {
 public:
  explicit Handle(HANDLE h = nullptr) : h_(h) {}
  Handle(const Handle &) = delete;
  Handle &operator=(const Handle &) = delete;
  ~Handle() { reset(); }
  HANDLE get() const { return h_; }
  void reset(HANDLE h = nullptr) {
    if (h_ != nullptr && h_ != INVALID_HANDLE_VALUE) {
      CloseHandle(h_);
    }
    h_ = h;
  }

 private:
  HANDLE h_;
};

}  // namespace wintone
