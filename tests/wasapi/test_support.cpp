// SPDX-License-Identifier: LGPL-2.1-or-later
#include "test_support.h"

#include <algorithm>
#include <atomic>
#include <cctype>

#include "wasapi/process_util.h"
#include "wasapi/win_string.h"

namespace procaudio {
namespace wasapi {
namespace testing {

bool running_under_wine() {
  HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
  return ntdll != nullptr && GetProcAddress(ntdll, "wine_get_version") != nullptr;
}

namespace {

std::wstring executable_path() {
  wchar_t path[MAX_PATH * 2];
  const DWORD n = GetModuleFileNameW(nullptr, path, static_cast<DWORD>(sizeof path / sizeof *path));
  return std::wstring(path, n);
}

// With a trailing backslash.
std::wstring executable_dir() {
  const std::wstring path = executable_path();
  const size_t slash = path.find_last_of(L"\\/");
  return slash == std::wstring::npos ? std::wstring() : path.substr(0, slash + 1);
}

std::wstring child_exe() {
  return executable_dir() + L"wasapi-test-child.exe";
}

// A path's file name without ".exe", UTF-8.
std::string file_stem(const std::wstring &path) {
  const std::wstring name = path.substr(path.find_last_of(L"\\/") + 1);
  return to_utf8(name.substr(0, name.size() - 4));
}

}  // namespace

std::string executable_stem() {
  return file_stem(executable_path());
}

std::string to_upper(std::string s) {
  for (char &c : s) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return s;
}

uint32_t unused_pid() {
  std::vector<ProcessEntry> processes;
  if (list_processes(processes)) {
    processes.clear();  // unlisted: the candidate is still far above what Windows hands out
  }
  uint32_t candidate = 0x3FFFFF0;
  while (std::any_of(processes.begin(), processes.end(),
                     [&](const ProcessEntry &p) { return p.pid == candidate; })) {
    candidate -= 4;
  }
  return candidate;
}

void RecordingSink::record(Call call) {
  call.at_ns = monotonic_now_ns();
  std::lock_guard<std::mutex> lock(mutex_);
  calls_.push_back(std::move(call));
  cond_.notify_all();
}

void RecordingSink::on_packet(const Packet &packet) {
  last_activity_ns_.store(packet.arrival_time_ns);
  Call call{Kind::kPacket, packet, {}, 0, {}, 0, {}};
  if (packet.data != nullptr && !(packet.flags & kPacketSilent)) {
    const uint8_t *bytes = static_cast<const uint8_t *>(packet.data);
    call.bytes.assign(bytes, bytes + size_t{packet.frames} * bytes_per_frame_);
  }
  call.packet.data = nullptr;
  record(std::move(call));
}

RecordingSink::RecordingSink(uint32_t bytes_per_frame, uint64_t quiet_ns)
    : bytes_per_frame_(bytes_per_frame),
      quiet_ns_(quiet_ns),
      last_activity_ns_(monotonic_now_ns()) {}

uint64_t RecordingSink::idle_deadline_ns() const {
  const uint64_t quiet = quiet_ns_.load();
  return quiet == UINT64_MAX ? UINT64_MAX : last_activity_ns_.load() + quiet;
}

void RecordingSink::on_idle(uint64_t now_ns) {
  last_activity_ns_.store(now_ns);
  Call call{Kind::kIdle, {}, {}, now_ns, {}, 0, {}};
  record(std::move(call));
}

void RecordingSink::on_target_exit() {
  record(Call{Kind::kTargetExit, {}, {}, 0, {}, 0, {}});
}

void RecordingSink::on_error(const CaptureError &error) {
  record(Call{Kind::kError, {}, {}, 0, error, 0, {}});
}

void RecordingSink::on_target_state(const TargetState &state) {
  record(Call{Kind::kTargetState, {}, {}, 0, {}, 0, state});
}

bool RecordingSink::wait_until(const std::function<bool(const std::vector<Call> &)> &done,
                               std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return cond_.wait_for(lock, timeout, [&] { return done(calls_); });
}

bool RecordingSink::wait_for_packets(size_t n, std::chrono::milliseconds timeout) {
  return wait_for(Kind::kPacket, n, timeout);
}

bool RecordingSink::wait_for(Kind kind, size_t n, std::chrono::milliseconds timeout) {
  return wait_until(
      [kind, n](const std::vector<Call> &calls) {
        return static_cast<size_t>(std::count_if(calls.begin(), calls.end(), [kind](const Call &c) {
                 return c.kind == kind;
               })) >= n;
      },
      timeout);
}

std::vector<RecordingSink::Call> RecordingSink::calls() {
  std::lock_guard<std::mutex> lock(mutex_);
  return calls_;
}

std::vector<RecordingSink::Call> RecordingSink::calls_of(Kind kind) {
  std::vector<Call> out;
  for (Call &c : calls()) {
    if (c.kind == kind) {
      out.push_back(std::move(c));
    }
  }
  return out;
}

size_t RecordingSink::count(Kind kind) {
  return calls_of(kind).size();
}

void RecordingSink::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  calls_.clear();
}

// ---- ChildProcess ----

ChildProcess::~ChildProcess() {
  if (process_.valid()) {
    request_exit();
    if (wait(5000) < 0) {
      TerminateProcess(process_.get(), 9);
      WaitForSingleObject(process_.get(), 5000);
    }
  }
}

ChildCopy::ChildCopy() {
  static std::atomic<int> counter{0};
  wchar_t temp[MAX_PATH + 1];
  const DWORD n = GetTempPathW(MAX_PATH + 1, temp);
  if (n == 0) {
    return;
  }
  const std::wstring path = std::wstring(temp, n) + L"procaudio-child-" +
                            std::to_wstring(GetCurrentProcessId()) + L"-" +
                            std::to_wstring(++counter) + L".exe";
  if (CopyFileW(child_exe().c_str(), path.c_str(), FALSE)) {
    path_ = path;
  }
}

ChildCopy::~ChildCopy() {
  if (!path_.empty()) {
    DeleteFileW(path_.c_str());
  }
}

std::string ChildCopy::stem() const {
  return file_stem(path_);
}

bool ChildProcess::start(uint32_t lifetime_ms, std::string &error, const std::wstring &exe_path,
                         const std::wstring &spawn) {
  static std::atomic<int> counter{0};
  // ASCII: the child reads it with OpenEventA.
  const std::wstring name = L"Local\\procaudio-wasapi-test-child-" +
                            std::to_wstring(GetCurrentProcessId()) + L"-" +
                            std::to_wstring(++counter);
  exit_event_.reset(CreateEventW(nullptr, TRUE, FALSE, name.c_str()));
  if (!exit_event_.valid()) {
    error = "CreateEventW failed: " + std::to_string(GetLastError());
    return false;
  }
  const std::wstring exe = exe_path.empty() ? child_exe() : exe_path;
  std::wstring command = L"\"" + exe + L"\" " + name + L" " + std::to_wstring(lifetime_ms);
  if (!spawn.empty()) {
    command += L" \"" + spawn + L"\"";
  }
  STARTUPINFOW si = {};
  si.cb = sizeof si;
  PROCESS_INFORMATION pi = {};
  if (!CreateProcessW(exe.c_str(), &command[0], nullptr, nullptr, FALSE, 0, nullptr, nullptr, &si,
                      &pi)) {
    error = "CreateProcessW(wasapi-test-child.exe) failed: " + std::to_string(GetLastError());
    return false;
  }
  CloseHandle(pi.hThread);
  process_.reset(pi.hProcess);
  pid_ = pi.dwProcessId;
  return true;
}

void ChildProcess::request_exit() {
  if (exit_event_.valid()) {
    SetEvent(exit_event_.get());
  }
}

int ChildProcess::wait(uint32_t timeout_ms) {
  if (!process_.valid()) {
    return -1;
  }
  if (WaitForSingleObject(process_.get(), timeout_ms) != WAIT_OBJECT_0) {
    return -1;
  }
  DWORD code = 0;
  GetExitCodeProcess(process_.get(), &code);
  return static_cast<int>(code);
}

}  // namespace testing
}  // namespace wasapi
}  // namespace procaudio
