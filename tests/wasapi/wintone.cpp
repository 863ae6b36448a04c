// SPDX-License-Identifier: LGPL-2.1-or-later
// wintone.exe: the tone player of the Windows tests. Renders a sine tone through shared-mode,
// event-driven WASAPI on the default render endpoint (eRender, eConsole), in the endpoint's mix
// format (IEEE float 32 or PCM 16, the same value in every channel). Under wine it is heard on
// the Linux side (winepulse -> PulseAudio); on Windows it is what process-loopback captures.
//
//   wintone.exe [--freq HZ] [--level DBFS] [--duration-ms N]
//               [--pause-after-ms A --pause-ms P] [--exit-event NAME] [--lifetime-ms N]
//               [--child]
//
//   --freq HZ           tone frequency, 1..20000, below half the mix rate (default 440)
//   --level DBFS        tone level, -120..0: amplitude 10^(DBFS/20) of full scale (default -6)
//   --duration-ms N     milliseconds of tone, counted in frames at the mix rate (default 3000);
//                       once they have been played out the client is stopped, exit 0
//   --pause-after-ms A  once A ms of tone have been played out (A < N), IAudioClient::Stop()
//   --pause-ms P        for P ms (nothing rendered at all), then Start() again, play the rest
//   --exit-event NAME   a named event (opened, not created): when it is set, stop, exit 0
//   --lifetime-ms N     hard bound (default 60000): after it the process exits 3, always
//   --child             do not play: run a copy of this exe with the same options (and the
//                       hidden `--role child`), print `child pid=N`, wait for it, exit with its
//                       exit code. The copy inherits stdin/stdout/stderr and is killed with this
//                       process (a kill-on-close job), so it never outlives a failed test.
//
// "Played out": the tone is followed by one device period of silent frames (a period and the
// stream latency at the end), and the client is stopped once the buffer is empty (at the end,
// a period and the stream latency after that): a listener hears exactly A ms of tone before the
// pause and N ms in all. So the audible pause is P ms plus about a period, and the process
// ends some tens of ms after the last tone frame was heard.
//
// Output: one line per event on stdout, flushed at once, `key=value` fields; qpc is
// QueryPerformanceCounter in 100 ns units.
//   started pid=P role=main|child rate=HZ channels=N format=F32|S16 freq=HZ qpc=T  (at Start())
//   paused frames=N qpc=T          (at the pause's Stop(); frames = tone frames written so far)
//   resumed qpc=T                  (at the Start() after the pause)
//   exit frames=N qpc=T code=C     (every exit of a player after its arguments were accepted,
//                                   the lifetime's included; frames = tone frames handed to
//                                   WASAPI)
//   child pid=P                    (--child only; that process prints no `exit` line)
// Exit codes: 0 done or exit event set, 1 a call failed (stderr names it and the HRESULT),
// 2 bad arguments (usage on stderr), 3 lifetime reached, 4 the audio engine stopped signalling
// the buffer event (no event for 2000 ms).
//
// Build (mingw-w64): wintone.cpp and wintone_render.cpp (the WASAPI rendering), link ole32 and
// uuid, and the runtime statically (-static: with the posix thread model, libstdc++/libgcc_eh
// import libwinpthread-1.dll unless it is linked in too).
#include "wintone_render.h"

#include <windows.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace wintone {
namespace {

constexpr uint64_t kMaxMs = 24ull * 3600 * 1000;  // bound for every millisecond option

// ---------------------------------------------------------------------------------- output ---

// Every stdout line and the lifetime watchdog's exit go through this lock: lines never
// interleave, and nothing is printed after the watchdog decided to end the process.
CRITICAL_SECTION g_out_lock;
bool g_finished = false;                    // main printed its exit line (under g_out_lock)
bool g_is_player = false;                   // the watchdog prints an `exit` line
std::atomic<uint64_t> g_frames_written{0};  // tone frames handed to WASAPI so far (by play())

// Prints one line (`fmt` without the newline) on stdout and flushes it, g_out_lock held.
void vsay_locked(const char *fmt, va_list ap) {
  char line[1024];
  const int n = std::vsnprintf(line, sizeof(line) - 1, fmt, ap);
  size_t len = n < 0 ? 0 : static_cast<size_t>(n);
  if (len > sizeof(line) - 2) {
    len = sizeof(line) - 2;
  }
  line[len] = '\n';
  line[len + 1] = '\0';
  std::fputs(line, stdout);
  std::fflush(stdout);
}

void say_locked(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsay_locked(fmt, ap);
  va_end(ap);
}

void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  EnterCriticalSection(&g_out_lock);
  vsay_locked(fmt, ap);
  LeaveCriticalSection(&g_out_lock);
  va_end(ap);
}

void print_exit_line_locked(int code) {
  say_locked("exit frames=%llu qpc=%llu code=%d",
             static_cast<unsigned long long>(g_frames_written.load()),
             static_cast<unsigned long long>(qpc_100ns()), code);
}

// ------------------------------------------------------------------------------- arguments ---

struct Options {
  ToneOptions tone;  // what play() takes; tone.role_child: --role child, this process is the copy
  bool has_pause_after = false;
  bool has_exit_event = false;
  std::wstring exit_event;
  uint64_t lifetime_ms = 60000;
  bool child = false;  // --child: run a copy of this exe instead of playing
};

int usage(const char *problem, const char *arg) {
  if (problem != nullptr) {
    std::fprintf(stderr, "wintone: %s%s%s\n", problem, arg != nullptr ? ": " : "",
                 arg != nullptr ? arg : "");
  }
  std::fputs(
      "usage: wintone.exe [--freq HZ] [--level DBFS] [--duration-ms N]\n"
      "                   [--pause-after-ms A --pause-ms P] [--exit-event NAME]\n"
      "                   [--lifetime-ms N] [--child]\n"
      "  --freq HZ           tone frequency, 1..20000 (default 440)\n"
      "  --level DBFS        tone level, -120..0 dBFS (default -6)\n"
      "  --duration-ms N     milliseconds of tone (default 3000)\n"
      "  --pause-after-ms A  after A ms of tone (A < duration), stop the client...\n"
      "  --pause-ms P        ...for P ms, then start it again and play the rest\n"
      "  --exit-event NAME   stop and exit 0 when this named event is set\n"
      "  --lifetime-ms N     exit 3 after N ms whatever happens (default 60000)\n"
      "  --child             play through a child copy of this program\n"
      "exit codes: 0 done, 1 error, 2 bad arguments, 3 lifetime reached, 4 audio engine\n"
      "stopped answering\n",
      stderr);
  std::fflush(stderr);
  return kExitUsage;
}

bool parse_double(const char *s, double lo, double hi, double *out) {
  if (*s == '\0') {
    return false;
  }
  char *end = nullptr;
  errno = 0;
  const double v = std::strtod(s, &end);
  if (errno != 0 || *end != '\0' || !std::isfinite(v) || v < lo || v > hi) {
    return false;
  }
  *out = v;
  return true;
}

bool parse_ms(const char *s, uint64_t lo, uint64_t *out) {
  if (*s < '0' || *s > '9') {
    return false;  // digits only: no sign, no blanks
  }
  char *end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < lo || v > kMaxMs) {
    return false;
  }
  *out = v;
  return true;
}

std::wstring widen(const char *s) {
  const int n = MultiByteToWideChar(CP_ACP, 0, s, -1, nullptr, 0);
  if (n <= 0) {
    return std::wstring();
  }
  std::wstring w(static_cast<size_t>(n), L'\0');
  MultiByteToWideChar(CP_ACP, 0, s, -1, &w[0], n);
  w.resize(static_cast<size_t>(n - 1));
  return w;
}

// Returns -1 when the arguments are good, else the exit code (usage printed).
int parse_args(int argc, char **argv, Options *o) {
  for (int i = 1; i < argc; ++i) {
    const std::string name = argv[i];
    if (name == "--child") {
      o->child = true;
      continue;
    }
    if (name != "--freq" && name != "--level" && name != "--duration-ms" &&
        name != "--pause-after-ms" && name != "--pause-ms" && name != "--exit-event" &&
        name != "--lifetime-ms" && name != "--role") {
      return usage("unknown option", argv[i]);
    }
    if (i + 1 >= argc) {
      return usage("missing value for", argv[i]);
    }
    const char *value = argv[++i];
    bool good = true;
    if (name == "--freq") {
      good = parse_double(value, 1.0, 20000.0, &o->tone.freq);
    } else if (name == "--level") {
      good = parse_double(value, -120.0, 0.0, &o->tone.level_db);
    } else if (name == "--duration-ms") {
      good = parse_ms(value, 0, &o->tone.duration_ms);
    } else if (name == "--pause-after-ms") {
      good = parse_ms(value, 0, &o->tone.pause_after_ms);
      o->has_pause_after = true;
    } else if (name == "--pause-ms") {
      good = parse_ms(value, 0, &o->tone.pause_ms);
      o->tone.has_pause = true;
    } else if (name == "--exit-event") {
      o->exit_event = widen(value);
      o->has_exit_event = true;
      good = !o->exit_event.empty();
    } else if (name == "--lifetime-ms") {
      good = parse_ms(value, 1, &o->lifetime_ms);
    } else {  // --role
      const std::string role = value;
      good = role == "main" || role == "child";
      o->tone.role_child = role == "child";
    }
    if (!good) {
      return usage((std::string("bad value for ") + name).c_str(), value);
    }
  }
  if (o->has_pause_after != o->tone.has_pause) {
    return usage("--pause-after-ms and --pause-ms go together", nullptr);
  }
  if (o->tone.has_pause && o->tone.pause_after_ms >= o->tone.duration_ms) {
    return usage("--pause-after-ms must be less than --duration-ms", nullptr);
  }
  return -1;
}

// ---------------------------------------------------------------------------------- lifetime ---

// Ends the process with exit code 3 (after an `exit` line when this process plays) once the
// lifetime has passed, unless main got to its end first. Its own thread, waiting on a waitable
// timer: whatever the main thread is stuck in, the bound holds.
class Watchdog {
 public:
  Watchdog() = default;
  Watchdog(const Watchdog &) = delete;
  Watchdog &operator=(const Watchdog &) = delete;
  ~Watchdog() { stop(); }

  // Arms the timer and starts the thread; false (with the error printed) on failure.
  bool start(uint64_t lifetime_ms) {
    lifetime_ms_ = lifetime_ms;
    timer_.reset(CreateWaitableTimerW(nullptr, TRUE, nullptr));
    if (timer_.get() == nullptr) {
      fail_win32("CreateWaitableTimerW");
      return false;
    }
    quit_.reset(CreateEventW(nullptr, TRUE, FALSE, nullptr));
    if (quit_.get() == nullptr) {
      fail_win32("CreateEventW");
      return false;
    }
    LARGE_INTEGER due;
    due.QuadPart = -static_cast<LONGLONG>(lifetime_ms) * 10000;  // relative, 100 ns units
    if (!SetWaitableTimer(timer_.get(), &due, 0, nullptr, nullptr, FALSE)) {
      fail_win32("SetWaitableTimer");
      return false;
    }
    thread_.reset(CreateThread(nullptr, 0, &Watchdog::thread_main, this, 0, nullptr));
    if (thread_.get() == nullptr) {
      fail_win32("CreateThread");
      return false;
    }
    return true;
  }

  // After main printed its last line (g_finished set): lets the thread go and joins it.
  void stop() {
    if (thread_.get() != nullptr) {
      SetEvent(quit_.get());
      WaitForSingleObject(thread_.get(), INFINITE);
      thread_.reset();
    }
  }

 private:
  static DWORD WINAPI thread_main(void *param) {
    Watchdog *self = static_cast<Watchdog *>(param);
    const HANDLE waits[2] = {self->quit_.get(), self->timer_.get()};
    if (WaitForMultipleObjects(2, waits, FALSE, INFINITE) != WAIT_OBJECT_0 + 1) {
      return 0;
    }
    EnterCriticalSection(&g_out_lock);
    if (g_finished) {
      LeaveCriticalSection(&g_out_lock);
      return 0;
    }
    std::fprintf(stderr, "wintone: lifetime of %llu ms reached\n",
                 static_cast<unsigned long long>(self->lifetime_ms_));
    std::fflush(stderr);
    if (g_is_player) {
      print_exit_line_locked(kExitLifetime);
    }
    TerminateProcess(GetCurrentProcess(), kExitLifetime);  // keeps g_out_lock: nothing more
    return 0;
  }

  uint64_t lifetime_ms_ = 0;
  Handle timer_;
  Handle quit_;
  Handle thread_;
};

// ------------------------------------------------------------------------------ --child ---

// Appends `arg` quoted the way CommandLineToArgvW and the C runtimes split it.
void append_arg(std::wstring *cmd, const std::wstring &arg) {
  if (!cmd->empty()) {
    *cmd += L' ';
  }
  if (!arg.empty() && arg.find_first_of(L" \t\n\v\"") == std::wstring::npos) {
    *cmd += arg;
    return;
  }
  *cmd += L'"';
  size_t backslashes = 0;
  for (const wchar_t ch : arg) {
    if (ch == L'\\') {
      ++backslashes;
      continue;
    }
    cmd->append(ch == L'"' ? backslashes * 2 + 1 : backslashes, L'\\');
    backslashes = 0;
    *cmd += ch;
  }
  cmd->append(backslashes * 2, L'\\');
  *cmd += L'"';
}

std::wstring module_path() {
  std::vector<wchar_t> buf(MAX_PATH);
  for (;;) {
    const DWORD n = GetModuleFileNameW(nullptr, buf.data(), static_cast<DWORD>(buf.size()));
    if (n == 0) {
      return std::wstring();
    }
    if (n < buf.size()) {
      return std::wstring(buf.data(), n);
    }
    buf.resize(buf.size() * 2);
  }
}

void make_inheritable(HANDLE h) {
  if (h != nullptr && h != INVALID_HANDLE_VALUE) {
    SetHandleInformation(h, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
  }
}

int run_child(int argc, char **argv) {
  const std::wstring exe = module_path();
  if (exe.empty()) {
    return fail_win32("GetModuleFileNameW");
  }
  std::wstring cmd;
  append_arg(&cmd, exe);
  for (int i = 1; i < argc;
       ++i) {  // parse_args accepted them: every option but --child has a value
    const std::string name = argv[i];
    if (name == "--child") {
      continue;
    }
    if (name == "--role") {
      ++i;
      continue;
    }
    append_arg(&cmd, widen(argv[i]));
    if (i + 1 < argc) {
      append_arg(&cmd, widen(argv[++i]));
    }
  }
  append_arg(&cmd, L"--role");
  append_arg(&cmd, L"child");

  // Best effort: the copy dies with this process (the watchdog's TerminateProcess included).
  Handle job(CreateJobObjectW(nullptr, nullptr));
  if (job.get() != nullptr) {
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION limits = {};
    limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    if (!SetInformationJobObject(job.get(), JobObjectExtendedLimitInformation, &limits,
                                 sizeof(limits))) {
      job.reset();
    }
  }

  STARTUPINFOW si = {};
  si.cb = sizeof(si);
  si.dwFlags = STARTF_USESTDHANDLES;
  si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
  si.hStdOutput = GetStdHandle(STD_OUTPUT_HANDLE);
  si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
  make_inheritable(si.hStdInput);
  make_inheritable(si.hStdOutput);
  make_inheritable(si.hStdError);
  PROCESS_INFORMATION pi = {};
  std::vector<wchar_t> cmdline(cmd.begin(), cmd.end());
  cmdline.push_back(L'\0');
  if (!CreateProcessW(exe.c_str(), cmdline.data(), nullptr, nullptr, TRUE, CREATE_SUSPENDED,
                      nullptr, nullptr, &si, &pi)) {
    return fail_win32("CreateProcessW");
  }
  Handle process(pi.hProcess);
  Handle thread(pi.hThread);
  if (job.get() != nullptr && !AssignProcessToJobObject(job.get(), process.get())) {
    // Not fatal: the test's own job still holds both; said, because without it the copy
    // could outlive this process.
    std::fprintf(stderr, "wintone: AssignProcessToJobObject failed: error %lu\n",
                 static_cast<unsigned long>(GetLastError()));
    std::fflush(stderr);
  }
  say("child pid=%lu", static_cast<unsigned long>(pi.dwProcessId));
  if (ResumeThread(thread.get()) == static_cast<DWORD>(-1)) {
    const int code = fail_win32("ResumeThread");
    TerminateProcess(process.get(), kExitError);
    return code;
  }
  if (WaitForSingleObject(process.get(), INFINITE) != WAIT_OBJECT_0) {  // the watchdog bounds it
    return fail_win32("WaitForSingleObject(child)");
  }
  DWORD code = kExitError;
  if (!GetExitCodeProcess(process.get(), &code)) {
    return fail_win32("GetExitCodeProcess");
  }
  return static_cast<int>(code);
}

// --------------------------------------------------------------------------------- main ---

// main() (below, outside the namespace) is all of this.
int run(int argc, char **argv) {
  InitializeCriticalSection(&g_out_lock);
  Options o;
  const int bad = parse_args(argc, argv, &o);
  if (bad >= 0) {
    return bad;
  }
  g_is_player = !o.child;
  Watchdog watchdog;
  if (!watchdog.start(o.lifetime_ms)) {
    return kExitError;
  }

  int code = kExitOk;
  if (o.child) {
    code = run_child(argc, argv);
  } else {
    // Without --exit-event, an event nobody sets: the same waits either way.
    Handle exit_event(o.has_exit_event ? OpenEventW(SYNCHRONIZE, FALSE, o.exit_event.c_str())
                                       : CreateEventW(nullptr, TRUE, FALSE, nullptr));
    if (exit_event.get() == nullptr) {
      code = fail_win32(o.has_exit_event ? "OpenEventW(--exit-event)" : "CreateEventW");
    } else {
      code = play(o.tone, exit_event.get(), PlayOutput{&say, &g_frames_written});
    }
  }
  EnterCriticalSection(&g_out_lock);  // blocks for good if the watchdog got there first
  g_finished = true;
  if (g_is_player) {
    print_exit_line_locked(code);
  }
  LeaveCriticalSection(&g_out_lock);
  watchdog.stop();
  DeleteCriticalSection(&g_out_lock);
  return code;
}

}  // namespace
}  // namespace wintone

int main(int argc, char **argv) {
  return wintone::run(argc, argv);
}
