// SPDX-License-Identifier: LGPL-2.1-or-later
#include "tone_player.h"

#include <atomic>
#include <cstdlib>
#include <sstream>
#include <vector>

#include "core/monotonic_clock.h"
#include "wasapi/win_string.h"

namespace procaudio {
namespace wasapi {
namespace testing {

namespace {

std::wstring beside_this_test(const wchar_t *file) {
  wchar_t path[MAX_PATH * 2];
  const DWORD n = GetModuleFileNameW(nullptr, path, static_cast<DWORD>(sizeof path / sizeof *path));
  std::wstring dir(path, n);
  dir = dir.substr(0, dir.find_last_of(L"\\/") + 1);
  return dir + file;
}

std::wstring number(double v) {
  std::wostringstream out;
  out << v;
  return out.str();
}

}  // namespace

uint64_t TonePlayer::Event::number(const char *key) const {
  auto it = fields.find(key);
  return it == fields.end() ? 0 : std::strtoull(it->second.c_str(), nullptr, 10);
}

std::wstring TonePlayer::default_exe() {
  return beside_this_test(L"wintone.exe");
}

TonePlayer::~TonePlayer() {
  if (process_.valid()) {
    request_exit();
    wait_exit(5000);
  }
  job_.reset();  // ends whatever is left of it: the player, its copy
  if (reader_.joinable()) {
    reader_.join();  // its stdout closes when the player (and a copy sharing it) are gone
  }
}

bool TonePlayer::start(const Options &o, std::string &error, const std::wstring &exe_path) {
  static std::atomic<int> counter{0};
  const std::wstring event_name = L"Local\\procaudio-wintone-" +
                                  std::to_wstring(GetCurrentProcessId()) + L"-" +
                                  std::to_wstring(++counter);
  exit_event_.reset(CreateEventW(nullptr, TRUE, FALSE, event_name.c_str()));
  if (!exit_event_.valid()) {
    error = "CreateEventW failed: " + std::to_string(GetLastError());
    return false;
  }
  SECURITY_ATTRIBUTES inherit = {sizeof inherit, nullptr, TRUE};
  HANDLE read_end = nullptr, write_end = nullptr;
  if (!CreatePipe(&read_end, &write_end, &inherit, 0)) {
    error = "CreatePipe failed: " + std::to_string(GetLastError());
    return false;
  }
  stdout_read_.reset(read_end);
  UniqueHandle child_stdout(write_end);
  SetHandleInformation(read_end, HANDLE_FLAG_INHERIT, 0);  // only the write end is inherited

  const std::wstring exe = exe_path.empty() ? default_exe() : exe_path;
  std::wstring command = L"\"" + exe + L"\" --freq " + number(o.freq) + L" --level " +
                         number(o.level_dbfs) + L" --duration-ms " +
                         std::to_wstring(o.duration_ms) + L" --lifetime-ms " +
                         std::to_wstring(o.lifetime_ms) + L" --exit-event " + event_name;
  if (o.pause_ms > 0) {
    command += L" --pause-after-ms " + std::to_wstring(o.pause_after_ms) + L" --pause-ms " +
               std::to_wstring(o.pause_ms);
  }
  if (o.child) {
    command += L" --child";
  }
  // A job that kills everything in it when its last handle (ours) closes.
  job_.reset(CreateJobObjectW(nullptr, nullptr));
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION limits = {};
  limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
  if (!job_.valid() || !SetInformationJobObject(job_.get(), JobObjectExtendedLimitInformation,
                                                &limits, sizeof limits)) {
    error = "CreateJobObjectW/SetInformationJobObject failed: " + std::to_string(GetLastError());
    return false;
  }
  // Nothing inherited but these two: not the test's other handles (another player's pipe,
  // meson's), which would keep them open as long as the player lives.
  HANDLE err = nullptr;
  DuplicateHandle(GetCurrentProcess(), GetStdHandle(STD_ERROR_HANDLE), GetCurrentProcess(), &err, 0,
                  TRUE, DUPLICATE_SAME_ACCESS);
  UniqueHandle child_stderr(err);
  HANDLE inherited[2] = {child_stdout.get(), child_stderr.get()};
  const DWORD n_inherited = child_stderr.valid() ? 2 : 1;
  SIZE_T list_size = 0;
  InitializeProcThreadAttributeList(nullptr, 1, 0, &list_size);
  std::vector<unsigned char> list_storage(list_size);
  auto *list = reinterpret_cast<LPPROC_THREAD_ATTRIBUTE_LIST>(list_storage.data());
  if (!InitializeProcThreadAttributeList(list, 1, 0, &list_size) ||
      !UpdateProcThreadAttribute(list, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, inherited,
                                 n_inherited * sizeof(HANDLE), nullptr, nullptr)) {
    error = "the process attribute list failed: " + std::to_string(GetLastError());
    return false;
  }
  STARTUPINFOEXW si = {};
  si.StartupInfo.cb = sizeof si;
  si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
  si.StartupInfo.hStdInput = nullptr;  // it reads nothing
  si.StartupInfo.hStdOutput = child_stdout.get();
  si.StartupInfo.hStdError = child_stderr.get();
  si.lpAttributeList = list;
  PROCESS_INFORMATION pi = {};
  const BOOL created = CreateProcessW(exe.c_str(), &command[0], nullptr, nullptr, TRUE,
                                      CREATE_SUSPENDED | EXTENDED_STARTUPINFO_PRESENT, nullptr,
                                      nullptr, &si.StartupInfo, &pi);
  DeleteProcThreadAttributeList(list);
  if (!created) {
    error = "CreateProcessW(" + to_utf8(exe) + ") failed: " + std::to_string(GetLastError());
    return false;
  }
  // In the job before it runs a single instruction: whatever it starts is in it too.
  if (!AssignProcessToJobObject(job_.get(), pi.hProcess)) {
    error = "AssignProcessToJobObject failed: " + std::to_string(GetLastError());
    TerminateProcess(pi.hProcess, 9);
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    return false;
  }
  ResumeThread(pi.hThread);
  CloseHandle(pi.hThread);
  process_.reset(pi.hProcess);
  pid_ = pi.dwProcessId;
  child_stdout.reset();  // ours closed: EOF comes when the player's copies are gone
  reader_ = std::thread(&TonePlayer::read_lines, this);
  return true;
}

void TonePlayer::read_lines() {
  std::string pending;
  char buffer[512];
  DWORD n = 0;
  while (ReadFile(stdout_read_.get(), buffer, sizeof buffer, &n, nullptr) && n > 0) {
    pending.append(buffer, n);
    size_t eol;
    while ((eol = pending.find('\n')) != std::string::npos) {
      std::string line = pending.substr(0, eol);
      pending.erase(0, eol + 1);
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) {
        line.pop_back();
      }
      Event e;
      e.at_ns = monotonic_now_ns();
      std::istringstream words(line);
      words >> e.word;
      std::string kv;
      while (words >> kv) {
        const size_t eq = kv.find('=');
        if (eq != std::string::npos) {
          e.fields[kv.substr(0, eq)] = kv.substr(eq + 1);
        }
      }
      std::lock_guard<std::mutex> lock(mutex_);
      events_.push_back(std::move(e));
      cond_.notify_all();
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  ended_ = true;
  cond_.notify_all();
}

bool TonePlayer::wait_event(const std::string &word, Event &event,
                            std::chrono::milliseconds timeout, size_t n) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto find = [&]() -> const Event * {
    size_t seen = 0;
    for (const Event &e : events_) {
      if (e.word == word && seen++ == n) {
        return &e;
      }
    }
    return nullptr;
  };
  cond_.wait_for(lock, timeout, [&] { return find() != nullptr || ended_; });
  const Event *e = find();
  if (e == nullptr) {
    return false;
  }
  event = *e;
  return true;
}

std::vector<TonePlayer::Event> TonePlayer::events() {
  std::lock_guard<std::mutex> lock(mutex_);
  return events_;
}

void TonePlayer::request_exit() {
  if (exit_event_.valid()) {
    SetEvent(exit_event_.get());
  }
}

int TonePlayer::wait_exit(uint32_t timeout_ms) {
  if (!process_.valid() || WaitForSingleObject(process_.get(), timeout_ms) != WAIT_OBJECT_0) {
    return -1;
  }
  DWORD code = 0;
  GetExitCodeProcess(process_.get(), &code);
  return static_cast<int>(code);
}

TonePlayerCopy::TonePlayerCopy() {
  static std::atomic<int> counter{0};
  wchar_t temp[MAX_PATH + 1];
  const DWORD n = GetTempPathW(MAX_PATH + 1, temp);
  if (n == 0) {
    return;
  }
  const std::wstring path = std::wstring(temp, n) + L"patone-" +
                            std::to_wstring(GetCurrentProcessId() % 100000) + L"-" +
                            std::to_wstring(++counter) + L".exe";
  if (CopyFileW(TonePlayer::default_exe().c_str(), path.c_str(), FALSE)) {
    path_ = path;
  }
}

TonePlayerCopy::~TonePlayerCopy() {
  if (!path_.empty()) {
    DeleteFileW(path_.c_str());
  }
}

std::string TonePlayerCopy::name() const {
  return to_utf8(path_.substr(path_.find_last_of(L"\\/") + 1));
}

}  // namespace testing
}  // namespace wasapi
}  // namespace procaudio
