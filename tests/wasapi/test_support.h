// SPDX-License-Identifier: LGPL-2.1-or-later
// What the WASAPI tests share: a CaptureSink that records and can be waited on (bounded),
// a real child process with a bounded lifetime, wine detection.
#pragma once

#include <windows.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "core/capture_backend.h"
#include "core/monotonic_clock.h"
#include "wasapi/unique_handle.h"
#include "wasapi/wasapi_backend.h"

namespace procaudio {
namespace wasapi {
namespace testing {

// True under wine (ntdll exports wine_get_version).
bool running_under_wine();

// This test executable's file name without ".exe", UTF-8.
std::string executable_stem();

// `s` with ASCII letters upper-cased: process names match in any case.
std::string to_upper(std::string s);

// Every process except this one: the target a test takes when it names none (include-tree
// with no target fails closed).
inline TargetSpec everything_but_us() {
  TargetSpec spec;
  spec.mode = TargetMode::kExcludeTree;
  return spec;
}

// A pid no process has: a multiple of 4 (what Windows hands out) far above those in use,
// checked against the process list.
uint32_t unused_pid();

// Records every sink call in order, with the time it happened.
class RecordingSink final : public CaptureSink {
 public:
  enum class Kind { kPacket, kIdle, kTargetExit, kError, kTargetState };
  struct Call {
    Kind kind;
    Packet packet;               // kPacket (data pointer not valid afterwards)
    std::vector<uint8_t> bytes;  // kPacket: the frames, copied
    uint64_t idle_now_ns = 0;    // kIdle
    CaptureError error;          // kError
    uint64_t at_ns = 0;          // when the call happened
    TargetState state;           // kTargetState
  };

  // Wants a tick `quiet_ns` after the last packet or tick (UINT64_MAX: never), as an engine
  // with that idle margin would.
  explicit RecordingSink(uint32_t bytes_per_frame, uint64_t quiet_ns = kWasapiIdleMarginNs);

  void on_packet(const Packet &packet) override;
  void on_idle(uint64_t now_ns) override;
  void on_target_exit() override;
  void on_error(const CaptureError &error) override;
  void on_target_state(const TargetState &state) override;
  uint64_t idle_deadline_ns() const override;
  void set_quiet_ns(uint64_t quiet_ns) { quiet_ns_.store(quiet_ns); }

  // Waits (bounded) until `done(calls)` holds; false on timeout.
  bool wait_until(const std::function<bool(const std::vector<Call> &)> &done,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  bool wait_for_packets(size_t n,
                        std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  bool wait_for(Kind kind, size_t n = 1,
                std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

  std::vector<Call> calls();
  std::vector<Call> calls_of(Kind kind);
  size_t count(Kind kind);
  void clear();

 private:
  void record(Call call);

  uint32_t bytes_per_frame_;
  std::atomic<uint64_t> quiet_ns_;
  std::atomic<uint64_t> last_activity_ns_;
  std::mutex mutex_;
  std::condition_variable cond_;
  std::vector<Call> calls_;
};

// A copy of wasapi-test-child.exe under a name no other process has (in %TEMP%), for
// name lookups that other tests running at the same time must not disturb. Deleted with
// this object: declare it before the ChildProcess that runs it.
class ChildCopy {
 public:
  ChildCopy();
  ~ChildCopy();
  ChildCopy(const ChildCopy &) = delete;
  ChildCopy &operator=(const ChildCopy &) = delete;

  const std::wstring &path() const { return path_; }  // empty if the copy failed
  std::string stem() const;                           // its file name without ".exe"

 private:
  std::wstring path_;
};

// wasapi-test-child.exe, started with a named event: it exits (code 0) when the event is
// set, or by itself (code 3) after `lifetime_ms`, so that it never outlives a failed test
// by long.
class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();
  ChildProcess(const ChildProcess &) = delete;
  ChildProcess &operator=(const ChildProcess &) = delete;

  // False (with `error` set) if it could not be started. `exe`: another copy of the child
  // (ChildCopy::path()), default: wasapi-test-child.exe beside this test.
  // `spawn`: a program (ChildCopy::path()) the child starts as its own child, sharing its
  // exit event and lifetime.
  bool start(uint32_t lifetime_ms, std::string &error, const std::wstring &exe = {},
             const std::wstring &spawn = {});
  // Asks it to exit; returns at once.
  void request_exit();
  // Waits (bounded) for it to be gone; its exit code, or -1 on timeout.
  int wait(uint32_t timeout_ms);

  uint32_t pid() const { return pid_; }
  HANDLE handle() const { return process_.get(); }

 private:
  UniqueHandle process_;
  UniqueHandle exit_event_;
  uint32_t pid_ = 0;
};

}  // namespace testing
}  // namespace wasapi
}  // namespace procaudio
